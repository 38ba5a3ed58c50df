"""The UFO validation split as a PyTorch dataset, with the competition's validation transform."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ._torch import torch
from .config import TargetConfig
from .hashing import content_hash, settings_digest
from .images import load_sample, read_image_bytes
from .ufo import ImageAnnotation, parse_entry, read_ufo

# The baseline's Normalize: ImageNet statistics on [0, 1] pixels.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class UFODataset(torch.utils.data.Dataset):
    """Images and words of a UFO annotation file, in file order, at the validation geometry.

    Items are what the baseline dataset hands its collate (``image`` as a normalised
    CHW float tensor, ``image_filename``, ``shape``, ``inverse_matrix``, ``polygons``
    as (1, N, 2) float32, the words that survive the resize), plus ``ignore`` and
    ``index``, by which the store collate finds the item's targets.
    """

    def __init__(
        self,
        images: str | Path,
        annotations: str | Path,
        size: int = 640,
        pad: str = "center",
        mean: Sequence[float] = MEAN,
        std: Sequence[float] = STD,
    ) -> None:
        self.images = Path(images)
        self.annotations_path = Path(annotations)
        self.size = size
        self.pad = pad
        self.normalize = Normalize(mean, std)
        entries = read_ufo(self.annotations_path)
        self.filenames = list(entries)
        self.annotations: list[ImageAnnotation] = [parse_entry(name, entries[name]) for name in self.filenames]

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, index: int) -> dict:
        sample = load_sample(self.images, self.annotations[index], self.size, self.pad)
        pixels = self.normalize(sample.letterbox.image(sample.image))
        height, width = sample.image.shape[:2]
        return {
            "image": torch.from_numpy(pixels.transpose(2, 0, 1)),
            "image_filename": sample.annotation.name,
            "shape": (width, height),  # as PIL's size in the baseline
            "inverse_matrix": sample.letterbox.inverse_matrix,
            "polygons": [polygon.reshape(1, -1, 2) for polygon in sample.polygons],
            "ignore": sample.ignore,
            "index": index,
        }

    def content_hashes(self, config: TargetConfig) -> list[str]:
        """Each image's content hash, as the precompute job computes it (reads every image file)."""
        settings = settings_digest(config, self.size, self.pad)
        return [content_hash(read_image_bytes(self.images / a.name), a, settings) for a in self.annotations]


class Normalize:
    """``(pixel - 255 * mean) / (255 * std)`` in float32, with the very operations of
    albumentations' ``Normalize`` (OpenCV's subtract and multiply), so the bits agree."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = np.array(mean, dtype=np.float32) * np.float32(255)
        self.scale = np.reciprocal(np.array(std, dtype=np.float32) * np.float32(255))
        if self.mean.shape != (3,) or self.scale.shape != (3,):
            raise ValueError(f"mean and std need 3 values (RGB), got {list(mean)} and {list(std)}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        pixels = image.astype(np.float32)
        cv2.subtract(pixels, (*self.mean.astype(np.float64), 0.0), pixels)
        cv2.multiply(pixels, (*self.scale.astype(np.float64), 1.0), pixels)
        return pixels
