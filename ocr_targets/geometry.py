"""Polygon geometry: input normalisation, the DB offset, and the validation transform."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import NamedTuple

import cv2
import numpy as np
import numpy.typing as npt
import pyclipper

from .choices import PAD_MODES

# Far beyond any image, and small enough that every square the maps take stays exact.
COORDINATE_LIMIT = 2.0**24
EPS = float(np.finfo(float).eps)  # the baseline's eps: float64 machine epsilon


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


def shrink_distance(polygon: np.ndarray, shrink_ratio: float) -> float | None:
    """The DB offset ``D = area * (1 - r^2) / (perimeter + eps)``, as OpenCV measures them;
    None where the baseline collate skips the word (area or perimeter not positive, D <= eps)."""
    area = cv2.contourArea(polygon)
    if area <= 0:
        return None
    perimeter = cv2.arcLength(polygon, True)
    if perimeter <= 0:
        return None
    distance = area * (1 - shrink_ratio**2) / (perimeter + EPS)
    return distance if distance > EPS else None


def shrink_and_dilate(polygon: np.ndarray, distance: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The paths of the Clipper round-join offsets of a closed polygon by ``-distance`` and ``+distance``."""
    return clipper_offset(polygon, -distance), clipper_offset(polygon, distance)


def clipper_offset(polygon: np.ndarray, delta: float) -> list[np.ndarray]:
    """The paths of pyclipper's round-join offset of a closed (N, 2) int32 polygon by ``delta``."""
    return clipper_offsets([polygon], [delta])[0]


def clipper_offsets(polygons: Sequence[np.ndarray], deltas: Sequence[float]) -> list[list[np.ndarray]]:
    """:func:`clipper_offset` of each polygon by its delta (float coordinates are truncated, as
    pyclipper truncates them). One offsetter, and one conversion of all the paths' points to an
    array: per word, Clipper's own work is then most of the cost."""
    offset = pyclipper.PyclipperOffset()
    results = []
    for polygon, delta in zip(polygons, deltas, strict=True):
        offset.Clear()
        offset.AddPath(polygon.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        results.append(offset.Execute(delta))
    arrays = iter(as_arrays([path for paths in results for path in paths]))
    return [[next(arrays) for _ in paths] for paths in results]


def as_arrays(paths: Sequence[list[list[int]]]) -> list[np.ndarray]:
    """Clipper paths as (K, 2) int32 arrays, views of one array made in one pass over them all."""
    counts = [len(path) for path in paths]
    flat = chain.from_iterable(chain.from_iterable(paths))
    points = np.fromiter(flat, dtype=np.int32, count=2 * sum(counts)).reshape(-1, 2)
    ends = np.cumsum(counts).tolist()
    return [points[end - count : end] for count, end in zip(counts, ends, strict=True)]


def path_bounds(paths: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each (K, 2) path's least and greatest x and y, as two (P, 2) arrays, in one pass over them all."""
    starts = np.cumsum([0] + [len(path) for path in paths[:-1]])
    points = np.concatenate(paths)
    return np.minimum.reduceat(points, starts), np.maximum.reduceat(points, starts)


# How far (pixels) a word may stick out of a frame and still count as drawn on it (rule 5).
_FRAME_TOLERANCE = 1.5


def quarter_turn(orientation: int) -> bool:
    """Whether EXIF ``orientation`` (5 to 8) turns the image by a quarter: width and height swap."""
    return orientation in (5, 6, 7, 8)


def upright_words(polygons: Sequence[np.ndarray], orientation: int, stored_size: tuple[int, int]) -> list[np.ndarray]:
    """Words of an EXIF-rotated image, in the frame of the upright image (float32).

    Words are taken as drawn on the stored (sensor) image, of ``stored_size`` (width,
    height), and mapped into the upright frame; unless every point fits the upright
    frame and not the stored one, which means they were drawn on the upright image.
    """
    words = [np.asarray(polygon, dtype=np.float32).reshape(-1, 2) for polygon in polygons]
    if orientation not in _UPRIGHT or not words:
        return words
    width, height = stored_size
    points = np.concatenate(words)
    upright = (height, width) if quarter_turn(orientation) else (width, height)
    if not _fits(points, (width, height)) and _fits(points, upright):
        return words
    return [_UPRIGHT[orientation](word[:, 0], word[:, 1], width - 1.0, height - 1.0) for word in words]


def _fits(points: np.ndarray, size: tuple[int, int]) -> bool:
    low, high = points.min(axis=0), points.max(axis=0)
    return bool((low >= -_FRAME_TOLERANCE).all() and (high <= np.array(size) - 1 + _FRAME_TOLERANCE).all())


def _stack(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([x, y], axis=-1).astype(np.float32, copy=False)


# EXIF orientation -> (x, y, W - 1, H - 1) of the stored image -> points in the upright frame.
_UPRIGHT = {
    2: lambda x, y, w, h: _stack(w - x, y),
    3: lambda x, y, w, h: _stack(w - x, h - y),
    4: lambda x, y, w, h: _stack(x, h - y),
    5: lambda x, y, w, h: _stack(y, x),
    6: lambda x, y, w, h: _stack(h - y, x),
    7: lambda x, y, w, h: _stack(h - y, w - x),
    8: lambda x, y, w, h: _stack(y, w - x),
}


@dataclass(frozen=True)
class Letterbox:
    """The competition's validation geometry for one (upright) image.

    The longest side is scaled to ``size`` (linear interpolation, sides rounded) and
    the result zero-padded to ``size`` x ``size``, centered (albumentations'
    ``PadIfNeeded`` default, which the baseline's config uses) or at the top left.
    ``matrix`` maps original pixel coordinates to target coordinates exactly;
    ``inverse_matrix`` is the baseline's own formula, which training code consumes.
    """

    original_size: tuple[int, int]  # (height, width)
    size: int
    pad: str = "center"

    def __post_init__(self) -> None:
        if self.pad not in PAD_MODES:
            raise ValueError(f"pad must be one of {', '.join(PAD_MODES)}, got {self.pad!r}")

    @property
    def scale(self) -> float:
        return self.size / max(self.original_size)

    @property
    def resized_size(self) -> tuple[int, int]:
        """(height, width) of the image content before padding (Python's rounding, as albumentations)."""
        return tuple(max(1, min(self.size, round(side * self.scale))) for side in self.original_size)

    @property
    def offset(self) -> tuple[int, int]:
        """(left, top) padding."""
        if self.pad == "top-left":
            return 0, 0
        height, width = self.resized_size
        return int((self.size - width) / 2.0), int((self.size - height) / 2.0)

    @property
    def matrix(self) -> np.ndarray:
        left, top = self.offset
        return np.array([[self.scale, 0.0, left], [0.0, self.scale, top], [0.0, 0.0, 1.0]])

    @property
    def inverse_matrix(self) -> np.ndarray:
        """As the baseline computes it: a crop box of ``int(side * scale)``, centered
        (or at the origin with top-left padding), scaled back to the original size."""
        height, width = self.original_size
        crop_width, crop_height = int(width * self.scale), int(height * self.scale)
        left, top = (self.size - crop_width) // 2, (self.size - crop_height) // 2
        if self.pad == "top-left":
            left, top = 0, 0
        translation = np.eye(3)
        translation[:2, 2] = -left, -top
        return np.diag([width / crop_width, height / crop_height, 1.0]) @ translation

    def image(self, image: np.ndarray) -> np.ndarray:
        """Resize (linear) and zero-pad an HxW or HxWxC image."""
        height, width = self.resized_size
        if (height, width) != image.shape[:2]:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR).reshape(
                height, width, *image.shape[2:]
            )
        left, top = self.offset
        padded = np.zeros((self.size, self.size, *image.shape[2:]), dtype=image.dtype)
        padded[top : top + height, left : left + width] = image
        return padded

    def keypoints(self, polygons: Sequence[np.ndarray]) -> Keypoints:
        """(N, 2) words in the upright frame moved as the baseline's transform moves them.

        Every point is clamped into the image, scaled (in float64, as albumentations moves
        keypoints), then dropped if the resize put it at x >= the resized width or y >= the
        resized height (``remove_invisible``, checked before the pad), shifted with the pad
        and cast to float32. The survivors are sliced again by each word's point count, so a
        dropped point shifts every later word by one point; a slice of fewer than 3 points
        is skipped.
        """
        height, width = self.original_size
        resized_height, resized_width = self.resized_size
        lengths = [len(np.asarray(polygon).reshape(-1, 2)) for polygon in polygons]
        if not lengths:
            return Keypoints([], [], 0)
        points = np.concatenate([np.asarray(polygon, dtype=np.float64).reshape(-1, 2) for polygon in polygons])
        limit = np.array([max(width - 1, 0), max(height - 1, 0)], dtype=np.float64)
        points = np.clip(points, 0, limit) * self.scale
        visible = (points[:, 0] < resized_width) & (points[:, 1] < resized_height)
        points = (points[visible] + self.offset).astype(np.float32)
        words, sources, start = [], [], 0
        for source, length in enumerate(lengths):
            piece = points[start : start + length]
            start += len(piece)
            if len(piece) >= 3:
                words.append(piece)
                sources.append(source)
        return Keypoints(words, sources, int(len(visible) - visible.sum()))


class Keypoints(NamedTuple):
    """Words after the baseline's keypoint transform (:meth:`Letterbox.keypoints`)."""

    polygons: list[np.ndarray]  # (K, 2) float32, target coordinates
    sources: list[int]  # the index of the word whose slice each polygon is
    dropped: int  # points the resize put outside the image: if any, later words are shifted


def survivors(polygons: Sequence[np.ndarray]) -> list[bool]:
    """Whether each transformed (float32) word is kept: 3 points or more, at least 1 px wide
    and high, and neither side 0 once rounded (the baseline dataset's filter). All words in
    one pass: a per-word call cost 22 us, a quarter of a photo's data path."""
    words = [np.asarray(polygon, dtype=np.float32).reshape(-1, 2) for polygon in polygons]
    counted = [k for k, points in enumerate(words) if len(points) >= 3]
    kept = [False] * len(words)
    if not counted:
        return kept
    points = np.concatenate([words[k] for k in counted])
    starts = np.cumsum([0] + [len(words[k]) for k in counted[:-1]])
    rounded = np.rint(points).astype(np.int32)
    spans = np.maximum.reduceat(points, starts) - np.minimum.reduceat(points, starts)
    sides = np.maximum.reduceat(rounded, starts) > np.minimum.reduceat(rounded, starts)
    for k, ok in zip(counted, ((spans >= 1).all(axis=1) & sides.all(axis=1)).tolist(), strict=True):
        kept[k] = ok
    return kept
