"""Polygon geometry: input normalisation, the DB offset, and the validation transform."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

import cv2
import numpy as np
import numpy.typing as npt
import pyclipper

# Far beyond any image, and small enough that every square the maps take stays exact.
COORDINATE_LIMIT = 2.0**24
_EPS = float(np.finfo(float).eps)


def as_polygons(polygons: Sequence[npt.ArrayLike]) -> list[np.ndarray]:
    """Return each polygon as an (N, 2) int32 array, truncated as the baseline collate does.

    Accepts (N, 2) or (1, N, 2), ints or floats, lists or arrays; polygons of one
    shape are checked in one go. Errors name the offending polygon by index.
    """
    try:
        block = np.asarray(polygons, dtype=np.float64)
    except (TypeError, ValueError):
        return [as_polygon(points, index) for index, points in enumerate(polygons)]
    if block.ndim == 4 and block.shape[1] == 1:
        block = block[:, 0]
    if block.ndim != 3 or block.shape[2] != 2 or not (np.abs(block) < COORDINATE_LIMIT).all():
        return [as_polygon(points, index) for index, points in enumerate(polygons)]
    return list(block.astype(np.int32))


def as_polygon(points: npt.ArrayLike, index: int) -> np.ndarray:
    """One polygon as an (N, 2) int32 array; ``index`` names it in error messages."""
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"polygon {index}: not a numeric array of points ({error})") from None
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.size == 0:
        return np.zeros((0, 2), dtype=np.int32)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"polygon {index}: expected shape (N, 2) or (1, N, 2), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"polygon {index}: non-finite coordinates {array.tolist()}")
    if not (np.abs(array) < COORDINATE_LIMIT).all():
        raise ValueError(f"polygon {index}: coordinates beyond +-{COORDINATE_LIMIT:g} pixels are not supported")
    return array.astype(np.int32)


def offset_distance(polygon: np.ndarray, shrink_ratio: float) -> float:
    """The DB offset ``D = area * (1 - r^2) / (perimeter + eps)``, as OpenCV measures them."""
    perimeter = cv2.arcLength(polygon, True) + _EPS
    return cv2.contourArea(polygon) * (1 - shrink_ratio**2) / perimeter


def shrink_and_dilate(polygon: np.ndarray, distance: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The paths of the Clipper round-join offsets of a closed polygon by ``-distance`` and ``+distance``."""
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(polygon.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    shrunk = [_as_array(path) for path in offset.Execute(-distance)]
    dilated = [_as_array(path) for path in offset.Execute(distance)]
    return shrunk, dilated


def _as_array(path: list[list[int]]) -> np.ndarray:
    """A Clipper path as (K, 2) int32 (``np.fromiter`` is the quickest way from nested lists)."""
    return np.fromiter(chain.from_iterable(path), dtype=np.int32, count=2 * len(path)).reshape(-1, 2)


@dataclass(frozen=True)
class Resize:
    """The competition's validation geometry for one image.

    The longest side is scaled to ``size`` and the result padded at the bottom and
    right to ``size`` x ``size``. ``matrix`` maps original pixel coordinates to
    target coordinates; ``inverse_matrix`` maps predictions back.
    """

    original_size: tuple[int, int]  # (height, width)
    size: int

    @property
    def scale(self) -> float:
        return self.size / max(self.original_size)

    @property
    def resized_size(self) -> tuple[int, int]:
        """(height, width) of the image content before padding."""
        return tuple(max(1, min(self.size, round(side * self.scale))) for side in self.original_size)

    @property
    def matrix(self) -> np.ndarray:
        return np.diag([self.scale, self.scale, 1.0])

    @property
    def inverse_matrix(self) -> np.ndarray:
        """As the baseline computes it: the original's longest side over the target side."""
        inverse = max(self.original_size) / self.size
        return np.diag([inverse, inverse, 1.0])

    def image(self, image: np.ndarray) -> np.ndarray:
        """Resize (linear) and zero-pad an HxW or HxWxC image."""
        height, width = self.resized_size
        resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        padded = np.zeros((self.size, self.size, *image.shape[2:]), dtype=image.dtype)
        padded[:height, :width] = resized.reshape(height, width, *image.shape[2:])
        return padded

    def polygons(self, polygons: Iterable[np.ndarray]) -> list[np.ndarray]:
        """Scale (N, 2) polygons with the image; float64 out, truncated later by the maps."""
        return [np.asarray(polygon, dtype=np.float64).reshape(-1, 2) * self.scale for polygon in polygons]
