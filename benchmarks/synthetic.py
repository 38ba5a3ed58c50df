"""Synthetic receipts: rows of slightly tilted word boxes, as a 640x640 receipt shows them."""

from __future__ import annotations

import json
from collections.abc import Sequence
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


_GLYPHS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$.,:-/"


def photo(
    rng: np.random.Generator, polygons: list[np.ndarray], shape: tuple[int, int], grain: np.ndarray
) -> np.ndarray:
    """A receipt as a phone photographs it: paper under uneven light, on a darker table, printed
    glyphs (not flat boxes) in the word boxes, sensor grain and a slight blur."""
    height, width = shape
    ys, xs = np.ogrid[0:height, 0:width]
    light = 150 + 80 * np.exp(
        -(((xs - width * rng.uniform(0.3, 0.7)) / width) ** 2 + ((ys - height * 0.4) / height) ** 2)
    )
    image = np.repeat(light[..., None] * 0.55, 3, axis=2)  # the table
    left, right = int(width * 0.12), int(width * 0.88)
    image[:, left:right] = light[:, left:right, None] * [0.97, 1.0, 1.02]  # the paper
    picture = image.astype(np.uint8)
    for polygon in polygons:
        x, y, w, h = cv2.boundingRect(polygon.astype(np.int32))
        scale = max(h, 4) / 30
        text = "".join(rng.choice(list(_GLYPHS), size=max(1, int(w / (20 * scale)))))
        ink = int(rng.uniform(20, 70))
        cv2.putText(picture, text, (x, y + h - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (ink, ink, ink), 1, cv2.LINE_AA)
    top, side = rng.integers(0, grain.shape[0] - height), rng.integers(0, grain.shape[1] - width)
    noisy = picture.astype(np.int16) + grain[top : top + height, side : side + width]
    return cv2.GaussianBlur(np.clip(noisy, 0, 255).astype(np.uint8), (3, 3), 0.6)


def write_photos(
    directory: Path,
    count: int,
    seed: int = 0,
    shape: tuple[int, int] | Sequence[tuple[int, int]] = (1280, 960),
    words: int = 164,
    quality: int = 90,
) -> tuple[Path, Path]:
    """Write ``count`` photographed receipts (JPEG, ``shape`` (height, width), or several shapes
    taken in turn, about ``words`` words) and their UFO annotation file: what users' validation
    sets hold, which cost more to decode and compress than flat synthetic images."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(shape)] if isinstance(shape[0], int) else [tuple(s) for s in shape]
    largest = max(h for h, _ in shapes) + 64, max(w for _, w in shapes) + 64
    grain = rng.normal(0, 7, (*largest, 3)).astype(np.int16)  # shifted per image: cheap to make
    images = directory / "images"
    images.mkdir(parents=True, exist_ok=True)
    annotations: dict = {"images": {}}
    for index in range(count):
        height, width = shapes[index % len(shapes)]
        polygons = [polygon * [width / 640, height / 640] for polygon in receipt_polygons(rng, words=words)]
        name = f"photo_{index:05d}.jpg"
        picture = photo(rng, polygons, (height, width), grain)
        cv2.imwrite(str(images / name), picture, [cv2.IMWRITE_JPEG_QUALITY, quality])
        words_of = {f"{i:04d}": {"points": polygon.round(1).tolist()} for i, polygon in enumerate(polygons)}
        annotations["images"][name] = {"words": words_of}
    annotation_file = directory / "annotations.json"
    annotation_file.write_text(json.dumps(annotations))
    return images, annotation_file
