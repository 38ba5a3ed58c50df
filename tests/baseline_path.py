"""The baseline's validation data path as of 2025-10-08, rebuilt for the tests from the real
libraries it ran on: PIL for loading and EXIF orientation, albumentations 1.3.1 for the
resize, the padding and the keypoints; the maps are the independent statement of ``oracle``.

Written independently of ``ocr_targets`` and in the baseline's own order of steps
(ocr/datasets/base.py, ocr/datasets/transforms.py, ocr/utils/orientation.py), so that
the parity tests compare the library with what training computed, not with itself.
Two adaptations to this machine, neither changing a value:

- keypoints go to albumentations as Python floats: the baseline ran numpy 1.26, where
  ``np.float32 * float`` is float64; under numpy 2 the same call would scale in float32;
- ``ToTensorV2`` (whose module needs torchvision) is its one line, ``from_numpy(transpose)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import albumentations as A
import numpy as np
import torch
from PIL import Image

from tests.oracle import oracle_maps

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def load_words(annotations: Path) -> dict[str, list[np.ndarray] | None]:
    """name -> (1, N, 2) int32 word polygons, as OCRDataset.__init__ reads the UFO file."""
    images = json.loads(annotations.read_text())["images"]
    words = {}
    for name, entry in images.items():
        polygons = [
            np.array([np.round(word["points"])], dtype=np.int32)
            for word in entry.get("words", {}).values()
            if isinstance(word.get("points"), list) and len(word["points"]) > 0
        ]
        words[name] = polygons or None
    return words


def open_upright(path: Path) -> tuple[Image.Image, int, tuple[int, int]]:
    """PIL image made upright with the baseline's rotations, its orientation and stored size."""
    image = Image.open(path)
    raw_size = image.size
    exif = image.getexif()
    orientation = int(exif.get(274, 1)) if exif else 1
    bicubic = {"resample": Image.Resampling.BICUBIC}
    flip = Image.Transpose.FLIP_LEFT_RIGHT
    if orientation == 2:
        image = image.transpose(flip)
    elif orientation == 3:
        image = image.rotate(180, **bicubic)
    elif orientation == 4:
        image = image.rotate(180, **bicubic).transpose(flip)
    elif orientation == 5:
        image = image.rotate(-90, expand=True, **bicubic).transpose(flip)
    elif orientation == 6:
        image = image.rotate(-90, expand=True, **bicubic)
    elif orientation == 7:
        image = image.rotate(90, expand=True, **bicubic).transpose(flip)
    elif orientation == 8:
        image = image.rotate(90, expand=True, **bicubic)
    return image.convert("RGB"), orientation, raw_size


def words_upright(polygons: list[np.ndarray], width: int, height: int, orientation: int) -> list[np.ndarray]:
    """The dataset's EXIF remap of words, unless they already fit only the upright frame."""
    polygons = [np.asarray(p, dtype=np.float32) for p in polygons]
    if orientation not in range(2, 9):
        return polygons
    points = np.vstack([p.reshape(-1, 2) for p in polygons])
    (min_x, min_y), (max_x, max_y) = points.min(axis=0), points.max(axis=0)

    def within(w, h):
        return min_x >= -1.5 and max_x <= w - 1 + 1.5 and min_y >= -1.5 and max_y <= h - 1 + 1.5

    upright_w, upright_h = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    if not within(width, height) and within(upright_w, upright_h):
        return polygons
    remapped = []
    for polygon in polygons:
        x, y = polygon.reshape(-1, 2)[:, 0], polygon.reshape(-1, 2)[:, 1]
        new = {
            2: (width - 1.0 - x, y),
            3: (width - 1.0 - x, height - 1.0 - y),
            4: (x, height - 1.0 - y),
            5: (y, x),
            6: (height - 1.0 - y, x),
            7: (height - 1.0 - y, width - 1.0 - x),
            8: (y, width - 1.0 - x),
        }[orientation]
        remapped.append(np.stack(new, axis=-1).astype(np.float32).reshape(polygon.shape))
    return remapped


def transform(image: np.ndarray, polygons: list[np.ndarray] | None, pad: str, number: type = float) -> dict:
    """DBTransforms.__call__ with the config's val_transform (PadIfNeeded centered, or top_left)."""
    compose = A.Compose(
        [
            A.LongestMaxSize(max_size=640, p=1.0),
            A.PadIfNeeded(min_width=640, min_height=640, border_mode=0, p=1.0, position=pad.replace("-", "_")),
            A.Normalize(mean=MEAN, std=STD),
        ],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=True),
    )
    height, width = image.shape[:2]
    keypoints = []
    if polygons is not None:
        for polygon in polygons:
            for x, y in polygon.reshape(-1, 2):
                keypoints.append((max(0, min(number(x), width - 1)), max(0, min(number(y), height - 1))))
    transformed = compose(image=image, keypoints=keypoints)
    tensor = torch.from_numpy(transformed["image"].transpose(2, 0, 1))
    out, index = [], 0
    for polygon in polygons or []:
        points = transformed["keypoints"][index : index + polygon.shape[1]]
        index += len(points)
        if len(points) >= 3:
            out.append(np.array(points, dtype=np.float32).reshape(1, -1, 2))
    return {
        "image": tensor,
        "polygons": out,
        "inverse_matrix": inverse_matrix((width, height), pad),
        "dropped_keypoints": len(keypoints) - len(transformed["keypoints"]),
    }


def inverse_matrix(original_size: tuple[int, int], pad: str, target: int = 640) -> np.ndarray:
    """calculate_cropbox + calculate_inverse_transform (crop box at the origin when padding top-left)."""
    ox, oy = original_size
    scale = target / max(ox, oy)
    w, h = int(ox * scale), int(oy * scale)
    cx, cy = ((target - w) // 2, (target - h) // 2) if pad == "center" else (0, 0)
    translation = np.eye(3)
    translation[0, 2], translation[1, 2] = -cx, -cy
    return np.dot(np.array([[ox / w, 0, 0], [0, oy / h, 0], [0, 0, 1]]), translation)


def keep_word(polygon: np.ndarray) -> bool:
    """OCRDataset._filter_degenerate_polygons (ndarray.ptp is gone from numpy 2: max - min)."""
    points = polygon.reshape(-1, 2)
    if points.shape[0] < 3:
        return False
    width, height = float(points[:, 0].max() - points[:, 0].min()), float(points[:, 1].max() - points[:, 1].min())
    rounded = np.rint(points).astype(np.int32, copy=False)
    if width < 1.0 or height < 1.0:
        return False
    return int(np.ptp(rounded[:, 0])) != 0 and int(np.ptp(rounded[:, 1])) != 0


def baseline_item(images: Path, name: str, words: list[np.ndarray] | None, pad: str, number: type = float) -> dict:
    """OCRDataset.__getitem__ followed by the collate's maps for this one item. ``number=np.float32``
    hands albumentations the keypoints as the baseline does, which numpy 2 scales in float32."""
    image, orientation, (raw_width, raw_height) = open_upright(images / name)
    polygons = words_upright(words, raw_width, raw_height, orientation) if words else None
    transformed = transform(np.array(image), polygons, pad, number)
    kept = [polygon for polygon in transformed["polygons"] if keep_word(polygon)]
    prob_map, thresh_map = oracle_maps((640, 640), kept)
    return {
        "image": transformed["image"],
        "image_filename": name,
        "shape": image.size,
        "inverse_matrix": transformed["inverse_matrix"],
        "polygons": kept,
        "dropped_keypoints": transformed["dropped_keypoints"],
        "prob_map": prob_map,
        "thresh_map": thresh_map,
    }
