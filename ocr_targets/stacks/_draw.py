"""The geometry PaddleOCR's ``draw_border_map`` and docTR's ``draw_thresh_map`` share: a word's
measures as shapely gives them, its Clipper offsets, and the borders of all words of a map,
each over the box of its first dilated path, drawn by one call of the compiled kernel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyclipper
import shapely

from ..geometry import path_bounds
from ._kernels import draw_borders


def shapes(polygons: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """shapely polygons of (K, 2) arrays (K >= 3), or of an (N, K, 2) array, made in one vectorized call as
    ``shapely.geometry.Polygon`` makes each: the same GEOS geometry, so the same measures."""
    if isinstance(polygons, np.ndarray):  # (N, K, 2)
        return shapely.polygons(polygons.astype(np.float64))
    counts = [len(polygon) for polygon in polygons]
    if len(set(counts)) == 1:
        return shapely.polygons(np.stack(polygons).astype(np.float64))
    coordinates = np.concatenate(polygons).astype(np.float64) if polygons else np.zeros((0, 2))
    return shapely.polygons(shapely.linearrings(coordinates, indices=np.repeat(np.arange(len(polygons)), counts)))


def measure(polygons: Sequence[np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each polygon's (area, length) as shapely gives them (see :func:`shapes`)."""
    if len(polygons) == 0:
        return np.zeros(0), np.zeros(0)
    geometries = shapes(polygons)
    return shapely.area(geometries), shapely.length(geometries)


def offsetter(polygon: np.ndarray) -> pyclipper.PyclipperOffset:
    """A Clipper round-join offsetter of a closed polygon; ``.Execute(delta)`` gives the offset's
    paths. Clipper truncates the coordinates, as it does for the stacks' tuples of floats."""
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(polygon.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return offset


def draw_words(
    thresh_map: np.ndarray,
    polygons: Sequence[np.ndarray],
    distances: Sequence[float],
    paths: Sequence[np.ndarray],
    scale: np.float32,
    offset: np.float32,
    doctr: bool,
) -> np.ndarray:
    """Max-merge each word's scaled border, over the box of its first dilated path, into
    ``thresh_map``; return which words were skipped because the stacks' own code raises for them.

    The stacks clamp the box's corners into the map and slice their distance array with Python's
    rules: where the box overlaps the map, its overlap; where it lies wholly beyond the right or
    bottom edge, a negative start still selects one column or row of the box, written to the
    map's last one (the stacks' own stray line, kept); elsewhere the slice is empty and their
    assignment raises a broadcast ValueError: those words are skipped.
    """
    if not polygons:
        return np.zeros(0, dtype=bool)
    height, width = thresh_map.shape
    low, high = path_bounds(paths)
    x0, x1, column, x_ok = _windows(low[:, 0], high[:, 0], width)
    y0, y1, row, y_ok = _windows(low[:, 1], high[:, 1], height)
    drawn = x_ok & y_ok
    for dtype in {polygon.dtype for polygon in polygons}:
        words = [k for k, polygon in enumerate(polygons) if polygon.dtype == dtype and drawn[k]]
        if not words:
            continue
        counts = [len(polygons[k]) for k in words]
        # The stacks shift the polygon in place by the box's corner, in numpy's arithmetic: the
        # difference rounded once to the polygon's dtype.
        vertices = np.subtract(np.concatenate([polygons[k] for k in words]), np.repeat(low[words], counts, axis=0))
        boxes = np.stack([np.arange(len(words)), x0[words], y0[words], x1[words], y1[words], column[words], row[words]])
        draw_borders(
            thresh_map,
            vertices.astype(dtype, copy=False),
            np.cumsum([0] + counts),
            np.asarray(distances, dtype=np.float64)[words],
            np.ascontiguousarray(boxes.T, dtype=np.int64),
            scale,
            offset,
            doctr,
        )
    return ~drawn


def _windows(low: np.ndarray, high: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """Along one axis, for boxes [low, high] of the map's axis of ``size``: the first and last
    index of the slice the stacks take of their distance array, where it is written in the map,
    and whether its length fits there (else their assignment raises)."""
    low, high = low.astype(np.int64), high.astype(np.int64)
    low_valid, high_valid = np.clip(low, 0, size - 1), np.clip(high, 0, size - 1)
    extent = high - low + 1
    start = _resolve(low_valid - low, extent)
    stop = _resolve(high_valid - high + extent, extent)
    return start, stop - 1, low_valid, stop - start == high_valid - low_valid + 1


def _resolve(index: np.ndarray, length: np.ndarray) -> np.ndarray:
    """A slice bound as Python resolves it for a sequence of ``length`` (``slice.indices``, step 1)."""
    return np.where(index < 0, np.maximum(index + length, 0), np.minimum(index, length))
