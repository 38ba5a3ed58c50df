"""The UFO validation split as a PyTorch dataset, with the competition's validation transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._torch import torch
from .config import TargetConfig
from .hashing import content_hash, settings_digest
from .images import load_sample, read_image_bytes
from .ufo import ImageAnnotation, parse_entry, read_ufo

# The baseline's Normalize: ImageNet statistics on [0, 1] pixels.
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class UFODataset(torch.utils.data.Dataset):
    """Images and words of a UFO annotation file, in file order, at the validation geometry.

    Items are what the baseline dataset hands its collate (``image`` as a normalised
    CHW float tensor, ``image_filename``, ``shape``, ``inverse_matrix``, ``polygons``),
    plus ``index``, by which the store collate finds the item's targets.
    """

    def __init__(self, images: str | Path, annotations: str | Path, size: int = 640) -> None:
        self.images = Path(images)
        self.annotations_path = Path(annotations)
        self.size = size
        entries = read_ufo(self.annotations_path)
        self.filenames = list(entries)
        self.annotations: list[ImageAnnotation] = [parse_entry(name, entries[name]) for name in self.filenames]

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, index: int) -> dict:
        sample = load_sample(self.images, self.annotations[index], self.size)
        pixels = (sample.resize.image(sample.image).astype(np.float32) / 255 - MEAN) / STD
        height, width = sample.image.shape[:2]
        return {
            "image": torch.from_numpy(pixels.transpose(2, 0, 1).copy()),
            "image_filename": sample.annotation.name,
            "shape": (width, height),  # as PIL's size in the baseline
            "inverse_matrix": sample.resize.inverse_matrix,
            "polygons": [polygon.reshape(1, -1, 2) for polygon in sample.polygons],
            "ignore": sample.annotation.ignore,
            "index": index,
        }

    def content_hashes(self, config: TargetConfig) -> list[str]:
        """Each image's content hash, as the precompute job computes it (reads every image file)."""
        settings = settings_digest(config, self.size)
        return [content_hash(read_image_bytes(self.images / a.name), a, settings) for a in self.annotations]
