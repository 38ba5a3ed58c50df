"""docTR 1.1's validation geometry: its dataset's relative boxes and its
``Resize((S, S), preserve_aspect_ratio=True, symmetric_pad=True)`` (``references/detection/train.py``),
step by step in the dtypes docTR computes them in, so that the boxes here are docTR's to the bit.

- ``DetectionDataset.format_polygons`` (``doctr/datasets/detection.py``): each word's box
  (x0, y0, x1, y1) is its points' min and max, float32;
- ``convert_to_relative_coords`` (``doctr/utils/geometry.py``): x divided by the image's width,
  y by its height, in float32, clipped to [0, 1]; the image is read with its EXIF orientation
  applied (``read_img_as_tensor``, ``doctr/io/image/pytorch.py``);
- ``Resize.forward`` and ``_resize_target`` (``doctr/transforms/modules/pytorch.py``): a square
  image is resized as it is and its boxes left untouched; any other is resized to ``S`` along its
  longer side and ``max(int(...), 1)`` along the other, padded with ``ceil(pad / 2)`` before,
  and each box coordinate becomes ``offset + t * resized / S`` (float32, left to right, the
  offset ``half_pad / S`` a Python float), clipped to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class SymmetricResize:
    """One (upright) image of ``original_size`` (height, width) brought to ``size`` x ``size`` as
    docTR's validation resize brings it: the geometry a doctr store records (the interface of
    :class:`ocr_targets.geometry.Letterbox` that the store and ``verify`` use)."""

    original_size: tuple[int, int]  # (height, width)
    size: int

    @property
    def square(self) -> bool:
        """docTR's ``target_ratio == actual_ratio``: a plain resize, boxes untouched."""
        height, width = self.original_size
        return height / width == 1.0

    @property
    def resized_size(self) -> tuple[int, int]:
        """(height, width) of the image content before padding: docTR's ``tmp_size``."""
        height, width = self.original_size
        ratio = height / width
        if self.square:
            return self.size, self.size
        if ratio > 1.0:
            return self.size, max(int(self.size / ratio), 1)
        return max(int(self.size * ratio), 1), self.size

    @property
    def offset(self) -> tuple[int, int]:
        """(left, top) padding: docTR's ``half_pad``."""
        height, width = self.resized_size
        return math.ceil((self.size - width) / 2), math.ceil((self.size - height) / 2)

    @property
    def matrix(self) -> np.ndarray:
        """Original pixel coordinates to target ones."""
        (height, width), (resized_height, resized_width) = self.original_size, self.resized_size
        left, top = self.offset
        return np.array([[resized_width / width, 0.0, left], [0.0, resized_height / height, top], [0.0, 0.0, 1.0]])

    @property
    def inverse_matrix(self) -> np.ndarray:
        """Target pixel coordinates to original ones."""
        (height, width), (resized_height, resized_width) = self.original_size, self.resized_size
        left, top = self.offset
        x, y = width / resized_width, height / resized_height
        return np.array([[x, 0.0, -left * x], [0.0, y, -top * y], [0.0, 0.0, 1.0]])

    def boxes(self, relative: np.ndarray) -> np.ndarray:
        """Relative (N, 4) float32 boxes of the original image as docTR's resize moves them."""
        if self.square:
            return relative
        (resized_height, resized_width), (left, top) = self.resized_size, self.offset
        moved = relative.copy()
        moved[:, [0, 2]] = left / self.size + relative[:, [0, 2]] * resized_width / self.size
        moved[:, [1, 3]] = top / self.size + relative[:, [1, 3]] * resized_height / self.size
        return np.clip(moved, 0, 1)

    def image(self, image: np.ndarray) -> np.ndarray:
        """An RGB uint8 image resized (PIL's antialiased bilinear) and zero-padded: for looking at
        (``show``, ``--with-images``). docTR resizes float tensors with torchvision, which this
        comes close to but does not reproduce; the targets do not depend on it."""
        (height, width), (left, top) = self.resized_size, self.offset
        resized = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
        padded = np.zeros((self.size, self.size, *image.shape[2:]), dtype=image.dtype)
        padded[top : top + height, left : left + width] = resized
        return padded


def relative_boxes(polygons: list[np.ndarray], original_size: tuple[int, int]) -> np.ndarray:
    """Words ((P, 2) points, int32 or float32) as docTR's dataset gives them: (N, 4) float32
    boxes relative to the image of ``original_size`` (height, width), clipped to [0, 1]."""
    if not polygons:
        return np.zeros((0, 4), dtype=np.float32)
    geoms = np.array([np.concatenate((p.min(axis=0), p.max(axis=0))) for p in polygons]).astype(np.float32)
    height, width = original_size
    boxes = np.empty(geoms.shape, dtype=np.float32)
    boxes[:, ::2] = geoms[:, ::2] / width
    boxes[:, 1::2] = geoms[:, 1::2] / height
    return boxes.clip(0, 1)


def corners(boxes: np.ndarray) -> list[np.ndarray]:
    """(N, 4) boxes as N (4, 2) float32 polygons, clockwise from (x0, y0): how a doctr store keeps
    its words (the values themselves, so that :func:`boxes_of` gives docTR's boxes back exactly)."""
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return list(np.stack([np.stack(c, axis=-1) for c in [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]], axis=1))


def boxes_of(words: list[np.ndarray]) -> np.ndarray:
    """The (N, 4) float32 boxes whose :func:`corners` ``words`` are."""
    if not words:
        return np.zeros((0, 4), dtype=np.float32)
    return np.stack([np.concatenate((word[0], word[2])) for word in words]).astype(np.float32)
