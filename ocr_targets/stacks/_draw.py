"""The geometry PaddleOCR's ``draw_border_map`` and docTR's ``draw_thresh_map`` share, word by
word: the word's measures as shapely gives them, its first dilated path, the window that path's
box writes in the map, and the words gathered for one call of the compiled kernel."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np
import pyclipper
import shapely

from ._kernels import draw_borders


def measure(polygons: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each polygon's (area, length) as ``shapely.geometry.Polygon`` gives them, in one vectorized
    call: the same GEOS arithmetic, so the same bits. Each polygon needs 3 points or more."""
    if not polygons:
        return np.zeros(0), np.zeros(0)
    counts = [len(polygon) for polygon in polygons]
    rings = shapely.linearrings(
        np.concatenate(polygons).astype(np.float64), indices=np.repeat(np.arange(len(polygons)), counts)
    )
    shapes = shapely.polygons(rings)
    return shapely.area(shapes), shapely.length(shapes)


def offset_paths(polygon: np.ndarray, delta: float) -> list[np.ndarray]:
    """The paths of the Clipper round-join offset of a closed polygon by ``delta``, (K, 2) int64
    each; Clipper truncates the coordinates, as it does for the stacks' tuples of floats."""
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(polygon.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return [
        np.fromiter(chain.from_iterable(path), dtype=np.int64, count=2 * len(path)).reshape(-1, 2)
        for path in offset.Execute(delta)
    ]


def window(path: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int, int, int] | None:
    """Where the stacks' border of one word lands: (x0, y0, x1, y1) of the box of ``path`` relative
    to its corner, inclusive, and the map column and row that (x0, y0) is written to.

    The stacks clamp the box's corners into the map and slice their distance array with Python's
    rules: where the box overlaps the map, its overlap; where it lies wholly beyond the right or
    bottom edge, a negative start still selects one column or row of the box, written to the
    map's last one (the stacks' own stray line, kept); elsewhere the slice is empty and their
    assignment raises a broadcast ValueError. None there.
    """
    (x_min, y_min), (x_max, y_max) = path.min(axis=0).tolist(), path.max(axis=0).tolist()
    height, width = shape
    columns = _window_1d(x_min, x_max, width)
    rows = _window_1d(y_min, y_max, height)
    if columns is None or rows is None:
        return None
    return columns[0], rows[0], columns[1], rows[1], columns[2], rows[2]


def _window_1d(low: int, high: int, size: int) -> tuple[int, int, int] | None:
    low_valid, high_valid = min(max(0, low), size - 1), min(max(0, high), size - 1)
    extent = high - low + 1
    start, stop, _ = slice(low_valid - low, high_valid - high + extent).indices(extent)
    if stop - start != high_valid - low_valid + 1:
        return None  # 0 cells into 1: the stacks' broadcast ValueError
    return start, stop - 1, low_valid


class Borders:
    """The words of one threshold map, gathered for one call of the kernel per vertex dtype."""

    def __init__(self) -> None:
        # dtype -> (words relative to their box corner, their offsets D, their boxes)
        self.groups: dict[np.dtype, tuple[list[np.ndarray], list[float], list[tuple[int, ...]]]] = {}

    def add(self, polygon: np.ndarray, distance: float, path: np.ndarray, box: tuple[int, ...]) -> None:
        """One word: its polygon, its offset D, its first dilated path and that path's window."""
        # The stacks shift the polygon in place by the box's corner, in numpy's arithmetic:
        # the difference rounded once to the polygon's dtype.
        shifted = np.subtract(polygon, path.min(axis=0)).astype(polygon.dtype, copy=False)
        words, distances, boxes = self.groups.setdefault(shifted.dtype, ([], [], []))
        boxes.append((len(words), *box))
        words.append(shifted)
        distances.append(distance)

    def draw(self, thresh_map: np.ndarray, scale: np.float32, offset: np.float32, doctr: bool) -> None:
        """Max-merge every word's scaled border into ``thresh_map`` (max-merging is order-free)."""
        for words, distances, boxes in self.groups.values():
            starts = np.cumsum([0] + [len(word) for word in words])
            vertices, boxes = np.concatenate(words), np.array(boxes, dtype=np.int64)
            draw_borders(thresh_map, vertices, starts, np.array(distances), boxes, scale, offset, doctr)
