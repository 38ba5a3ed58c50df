"""Synthetic receipts: rows of slightly tilted word boxes, as a 640x640 receipt shows them."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


def receipt_polygons(rng: np.random.Generator, size: int = 640, words: int = 100) -> list[np.ndarray]:
    """About ``words`` quads in rows down a receipt-shaped column of a ``size`` image."""
    polygons: list[np.ndarray] = []
    left, right = 0.2 * size, 0.8 * size
    y = 0.03 * size
    while len(polygons) < words and y < 0.97 * size:
        height = rng.uniform(9, 16)
        tilt = rng.uniform(-0.03, 0.03)
        x = left + rng.uniform(0, 10)
        while x < right and len(polygons) < words:
            width = rng.uniform(15, 70)
            corners = np.array([[x, y], [x + width, y], [x + width, y + height], [x, y + height]])
            corners[:, 1] += (corners[:, 0] - left) * tilt
            polygons.append(corners + rng.normal(0, 0.7, corners.shape))
            x += width + rng.uniform(5, 20)
        y += height + rng.uniform(3, 9)
    return polygons


def write_receipts(directory: Path, count: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``count`` receipt images (1200x1600 JPEGs) and their UFO annotation file."""
    rng = np.random.default_rng(seed)
    images = directory / "images"
    images.mkdir(parents=True, exist_ok=True)
    annotations: dict = {"images": {}}
    for index in range(count):
        polygons = [polygon * 2.5 for polygon in receipt_polygons(rng)]
        image = np.full((1600, 1200, 3), 235, dtype=np.uint8)
        for polygon in polygons:
            cv2.fillPoly(image, [polygon.astype(np.int32)], (40, 40, 40))
        name = f"receipt_{index:05d}.jpg"
        cv2.imwrite(str(images / name), image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        words = {f"{i:04d}": {"points": polygon.round(1).tolist()} for i, polygon in enumerate(polygons)}
        annotations["images"][name] = {"words": words}
    annotation_file = directory / "annotations.json"
    annotation_file.write_text(json.dumps(annotations))
    return images, annotation_file
