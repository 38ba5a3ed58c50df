"""DB target maps: the plain reference path and the fast path that must equal it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from .arrays import BY_NAME
from .border import draw_borders
from .config import TargetConfig
from .geometry import EPS, as_polygons, clipper_offsets, path_bounds, shrink_and_dilate, shrink_distance
from .offsets import dilate, shrink_distances


@dataclass(frozen=True, eq=False)
class Targets:
    """The training targets of one image.

    ``prob_map`` and ``thresh_map`` are the compatibility contract with the baseline
    collate. The masks are DB-style extras that never change the maps:
    ``prob_mask`` is 0 over ignored words and over words too small to shrink,
    ``thresh_mask`` is 1 inside the dilated polygons of the words not ignored.
    """

    prob_map: np.ndarray  # float32 (h, w), 0/1
    thresh_map: np.ndarray  # float32 (h, w), in [thresh_min, thresh_max]
    prob_mask: np.ndarray  # uint8 (h, w), 0/1
    thresh_mask: np.ndarray  # uint8 (h, w), 0/1
    shrunk_polygons: list[np.ndarray]  # (K, 2) int32 each


def reference_targets(
    shape: tuple[int, int],
    polygons: Sequence[npt.ArrayLike],
    config: TargetConfig = TargetConfig(),
    ignore: Sequence[bool] | None = None,
    *,
    out: Mapping[str, np.ndarray] | None = None,
) -> Targets:
    """The baseline's on-the-fly algorithm, step by step as its collate (``DBCollateFN``) runs it.

    Written to be read and to be the yardstick of ``verify``, not to be fast. ``out``, as in
    :func:`compute_targets`.
    """
    canvas = _Canvas(_check_shape(shape), out)
    thresh_map = np.zeros(canvas.shape, dtype=np.float32)
    for polygon, ignored, distance in _words(polygons, ignore, config, canvas, _each_distance):
        shrunk, dilated = shrink_and_dilate(polygon, distance)
        canvas.add(polygon, shrunk, dilated, ignored)
        for path in dilated:
            _draw_border_reference(thresh_map, polygon, path, distance)
    scaled = canvas.new("thresh_map", 0)
    scaled[...] = thresh_map * (config.thresh_max - config.thresh_min) + config.thresh_min
    return canvas.targets(scaled)


def compute_targets(
    shape: tuple[int, int],
    polygons: Sequence[npt.ArrayLike],
    config: TargetConfig = TargetConfig(),
    ignore: Sequence[bool] | None = None,
    *,
    out: Mapping[str, np.ndarray] | None = None,
) -> Targets:
    """The fast path: the same maps as :func:`reference_targets`, bit for bit.

    ``out`` may hold arrays of the image's shape, by map name (``prob_map``, ...), for the maps
    to be drawn into in place of new ones (a collate's views of its batch tensors: no copy).

    The shrunk paths and the fills are the reference's; the dilated paths come from
    :mod:`ocr_targets.offsets` (compiled for most words, all words in one call); the
    threshold map, where the reference spends nearly all its time, is drawn for all
    words at once by the compiled kernel in :mod:`ocr_targets.border`.
    """
    canvas = _Canvas(_check_shape(shape), out)
    scale, offset = np.float32(config.thresh_max - config.thresh_min), np.float32(config.thresh_min)
    thresh_map = canvas.new("thresh_map", offset)  # the scaled zero
    drawn = _words(polygons, ignore, config, canvas, shrink_distances)
    words = [polygon for polygon, _, _ in drawn]
    distances = [distance for _, _, distance in drawn]
    shrunk, dilations = clipper_offsets(words, [-distance for distance in distances]), dilate(words, distances)
    for (polygon, ignored, _), inner, outer in zip(drawn, shrunk, dilations, strict=True):
        canvas.add(polygon, inner, outer, ignored)
    boxes = _boxes(dilations, canvas.shape)
    if len(boxes):
        starts = np.cumsum([0] + [len(polygon) for polygon in words])
        vertices = np.concatenate(words).astype(np.float64)
        draw_borders(thresh_map, vertices, starts, np.array(distances), boxes, scale, offset)
    return canvas.targets(thresh_map)


def _boxes(dilations: list[list[np.ndarray]], shape: tuple[int, int]) -> np.ndarray:
    """(B, 5) int64: word, x0, y0, x1, y1 of each dilated path's box cut to the map (inclusive),
    for the paths whose box meets the map; the reference draws each path over the same box."""
    paths = [(word, path) for word, dilated in enumerate(dilations) for path in dilated]
    if not paths:
        return np.zeros((0, 5), dtype=np.int64)
    height, width = shape
    low, high = path_bounds([path for _, path in paths])
    low, high = np.maximum(low, 0), np.minimum(high, [width - 1, height - 1])
    boxes = np.column_stack([[word for word, _ in paths], low, high]).astype(np.int64)
    return boxes[(low <= high).all(axis=1)]


def load_compiled() -> None:
    """Load the fast path's compiled kernels from numba's cache now: 0.3-0.5 s of a core in a fresh
    process, most of it numba's one-time set-up of its CPU target. A process forked afterwards
    (the job's workers, from their forkserver) starts with them loaded."""
    compute_targets((8, 8), [[[1, 1], [6, 1], [6, 6], [1, 6]]])


def _words(
    polygons: Sequence[npt.ArrayLike],
    ignore: Sequence[bool] | None,
    config: TargetConfig,
    canvas: _Canvas,
    measure: Callable[[list[np.ndarray], float], list[float | None]],
) -> list[tuple[np.ndarray, bool, float]]:
    """(polygon, ignored, D) for every polygon the baseline collate draws, ``measure`` giving D.

    It skips a polygon of fewer than 3 array elements, and one whose area, perimeter or
    offset ``D`` is not positive (a line, a point, a Z-ordered quad whose halves cancel):
    such a word adds nothing to the maps; the probability mask is 0 over it.
    """
    if ignore is None:
        ignore = [False] * len(polygons)
    if len(ignore) != len(polygons):
        raise ValueError(f"got {len(ignore)} ignore flags for {len(polygons)} polygons")
    words = [(polygon, ignored) for polygon, ignored in zip(as_polygons(polygons), ignore, strict=True)]
    words = [(polygon, ignored) for polygon, ignored in words if polygon.size >= 3]
    distances = measure([polygon for polygon, _ in words], config.shrink_ratio)
    drawn = []
    for (polygon, ignored), distance in zip(words, distances, strict=True):
        if distance is None:
            canvas.mask_out(polygon)
        else:
            drawn.append((polygon, ignored, distance))
    return drawn


def _each_distance(polygons: list[np.ndarray], shrink_ratio: float) -> list[float | None]:
    """D of each word, measured as the baseline measures it (OpenCV, word by word)."""
    return [shrink_distance(polygon, shrink_ratio) for polygon in polygons]


class _Canvas:
    """What both paths build the same way, word by word: the probability map, the masks
    and the shrunk polygons. The threshold map is each path's own business."""

    def __init__(self, shape: tuple[int, int], out: Mapping[str, np.ndarray] | None) -> None:
        self.shape = shape
        self.out = out or {}
        self.prob_map = self.new("prob_map", 0)
        self.prob_mask = self.new("prob_mask", 1)
        self.thresh_mask = self.new("thresh_mask", 0)
        self.shrunk_polygons: list[np.ndarray] = []

    def new(self, name: str, value: float) -> np.ndarray:
        """The map ``name`` set to ``value``: the caller's ``out[name]`` if given, else a new array."""
        dtype, array = BY_NAME[name].dtype, self.out.get(name)
        if array is None:
            return np.zeros(self.shape, dtype) if value == 0 else np.full(self.shape, value, dtype)
        if array.shape != self.shape or array.dtype != dtype or not array.flags.c_contiguous:
            raise ValueError(
                f"out[{name!r}] must be a C-contiguous {np.dtype(dtype)} array of shape {self.shape}, "
                f"got {array.dtype} {array.shape}"
            )
        array.fill(value)
        return array

    def add(self, polygon: np.ndarray, shrunk: list[np.ndarray], dilated: list[np.ndarray], ignored: bool) -> None:
        """Draw a word from its shrunk and dilated paths."""
        for path in shrunk:
            cv2.fillPoly(self.prob_map, [path], 1.0)
        if ignored or not shrunk:
            self.mask_out(polygon)
        if not ignored and dilated:
            cv2.fillPoly(self.thresh_mask, dilated, 1)
        self.shrunk_polygons.extend(shrunk)

    def mask_out(self, polygon: np.ndarray) -> None:
        """A word the model is not to be scored on: ignored, or too small to shrink or draw."""
        cv2.fillPoly(self.prob_mask, [polygon], 0)

    def targets(self, thresh_map: np.ndarray) -> Targets:
        return Targets(self.prob_map, thresh_map, self.prob_mask, self.thresh_mask, self.shrunk_polygons)


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 2 or min(shape) <= 0:
        raise ValueError(f"shape must be (height, width) with positive sides, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _draw_border_reference(thresh_map: np.ndarray, polygon: np.ndarray, path: np.ndarray, distance: float) -> None:
    """Max-merge ``1 - clip(edge distance / D, 0, 1)`` (min over edges) over one dilated path's box.

    A pixel's value does not depend on the box it is computed in, so only the part
    of the box inside the map is computed (the baseline computed it all, then cropped).
    """
    (xmin, ymin), (xmax, ymax) = path.min(axis=0), path.max(axis=0)
    height, width = thresh_map.shape
    x0, x1, y0, y1 = max(0, xmin), min(width - 1, xmax), max(0, ymin), min(height - 1, ymax)
    if x0 > x1 or y0 > y1:
        return  # the box lies wholly outside the image (the baseline raised here)
    xs = np.arange(x0, x1 + 1, dtype=np.float64).reshape(1, -1)
    ys = np.arange(y0, y1 + 1, dtype=np.float64).reshape(-1, 1)
    xs, ys = np.broadcast_arrays(xs, ys)
    vertices = polygon.astype(np.float64)
    distances = np.zeros((len(vertices), *xs.shape), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(len(vertices)):
            j = (i + 1) % len(vertices)
            distances[i] = np.clip(_edge_distance(xs, ys, vertices[i], vertices[j]) / distance, 0, 1)
    window = thresh_map[y0 : y1 + 1, x0 : x1 + 1]
    window[...] = np.fmax(1 - distances.min(axis=0), window)


def _edge_distance(xs: np.ndarray, ys: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The baseline's pixel-to-edge distance.

    Where the angle the edge subtends at the pixel is obtuse (``cosin < 0``), the
    distance to the nearer endpoint; elsewhere the distance to the edge's line. The two
    ``EPS`` terms keep a repeated point's own pixel at distance 0 instead of NaN.
    """
    square_1 = np.square(xs - start[0]) + np.square(ys - start[1])
    square_2 = np.square(xs - end[0]) + np.square(ys - end[1])
    square_edge = np.square(start[0] - end[0]) + np.square(start[1] - end[1]) + EPS
    cosin = (square_edge - square_1 - square_2) / (2 * np.sqrt(square_1 * square_2) + EPS)
    square_sin = np.nan_to_num(1 - np.square(cosin))
    result = np.sqrt(square_1 * square_2 * square_sin / square_edge)
    acute = cosin < 0
    result[acute] = np.sqrt(np.fmin(square_1, square_2))[acute]
    return result
