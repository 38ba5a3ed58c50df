"""PaddleOCR 2.10's DB targets, bit for bit and about 10x faster: drop-in replacements of its
``MakeBorderMap`` and ``MakeShrinkMap`` (``ppocr/data/imaug/make_border_map.py``,
``make_shrink_map.py``).

Same constructor parameters, same data-dict keys in and out (``threshold_map``,
``threshold_mask``, ``shrink_map``, ``shrink_mask``), and the same in-place edits: the shrink
op clips ``polys`` into the image, reverses the polygons of positive area in its orientation
and sets ``ignore_tags`` of the words it masks out, as PaddleOCR's does for the ops after it.

Where PaddleOCR's border op raises, a word is skipped instead (no border, no mask, as its own
``area <= 0`` guard does) and counted in the op's ``skipped`` counter, by cause:
``"empty offset"`` (Clipper returns no dilated path, PaddleOCR's IndexError), ``"outside the
image"`` (the word's dilated box lies wholly left of or above the image, starts right at its
right or bottom edge, or beyond it by more than its own extent: PaddleOCR's broadcast
ValueError; in between, PaddleOCR writes one column or row of the box into the image's last
one, and so does this) and ``"fewer than 3 points"`` (shapely's ValueError). Non-finite
coordinates raise ValueError.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from ..geometry import as_arrays
from ..offsets import dilate
from ._draw import draw_words, measure, offsetter


class MakeBorderMap:
    """The threshold map and mask: PaddleOCR's ``MakeBorderMap``, compiled."""

    def __init__(self, shrink_ratio: float = 0.4, thresh_min: float = 0.3, thresh_max: float = 0.7, **kwargs) -> None:
        self.shrink_ratio = _scheduled(shrink_ratio, kwargs)
        self.thresh_min = thresh_min
        self.thresh_max = thresh_max
        self.skipped: Counter[str] = Counter()  # words where PaddleOCR's op would have raised, by cause

    def __call__(self, data: dict) -> dict:
        polygons = _words(data["polys"], data["ignore_tags"])
        thresh_map, mask, skipped = border_map(
            data["image"].shape[:2], polygons, self.shrink_ratio, self.thresh_min, self.thresh_max
        )
        self.skipped.update(skipped)
        data["threshold_map"] = thresh_map
        data["threshold_mask"] = mask
        return data


class MakeShrinkMap:
    """The probability (shrink) map and mask: PaddleOCR's ``MakeShrinkMap``, with its in-place edits."""

    def __init__(self, min_text_size: int = 8, shrink_ratio: float = 0.4, **kwargs) -> None:
        self.min_text_size = min_text_size
        self.shrink_ratio = _scheduled(shrink_ratio, kwargs)

    def __call__(self, data: dict) -> dict:
        height, width = data["image"].shape[:2]
        shrink_map, mask = shrink_map_in_place(
            (height, width), data["polys"], data["ignore_tags"], self.shrink_ratio, self.min_text_size
        )
        data["shrink_map"] = shrink_map
        data["shrink_mask"] = mask
        return data


def border_map(
    shape: tuple[int, int],
    polygons: Sequence[np.ndarray],
    shrink_ratio: float = 0.4,
    thresh_min: float = 0.3,
    thresh_max: float = 0.7,
) -> tuple[np.ndarray, np.ndarray, Counter[str]]:
    """(threshold map, threshold mask, words skipped by cause) of the words not ignored, each a
    (K, 2) array in the dtype PaddleOCR's pipeline gives it (float32 or float64).

    PaddleOCR's order of operations: D from shapely's area and length, the first path of the
    Clipper offset by +D filled into the mask, over that path's box the edge distances of
    :mod:`ocr_targets.stacks._kernels`, ``fmax``-merged, scaled at the end.
    """
    scale, offset = np.float32(thresh_max - thresh_min), np.float32(thresh_min)
    thresh_map = np.full(shape, offset, dtype=np.float32)  # the scaled zero
    mask = np.zeros(shape, dtype=np.float32)
    skipped: Counter[str] = Counter()
    measurable = [polygon for polygon in polygons if len(polygon) >= 3]
    skipped["fewer than 3 points"] += sum(0 < len(polygon) < 3 for polygon in polygons)
    areas, lengths = measure(measurable)
    factor = float(1 - np.power(shrink_ratio, 2))  # Python floats: numpy's float64 arithmetic, faster
    candidates = [
        (polygon, area * factor / length)
        for polygon, area, length in zip(measurable, areas.tolist(), lengths.tolist(), strict=True)
        if area > 0  # PaddleOCR's own guard
    ]
    dilations = dilate([polygon for polygon, _ in candidates], [distance for _, distance in candidates])
    words, distances, paths = [], [], []
    for (polygon, distance), dilated in zip(candidates, dilations, strict=True):
        if not dilated:
            skipped["empty offset"] += 1
            continue
        words.append(polygon)
        distances.append(distance)
        paths.append(dilated[0])
    for path in paths:
        cv2.fillPoly(mask, [path], 1.0)  # a box wholly outside the image fills nothing
    outside = draw_words(thresh_map, words, distances, paths, scale, offset, doctr=False)
    skipped["outside the image"] += int(outside.sum())
    return thresh_map, mask, +skipped


def shrink_map_in_place(
    shape: tuple[int, int],
    polys: npt.ArrayLike,
    ignore_tags: npt.ArrayLike,
    shrink_ratio: float = 0.4,
    min_text_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """(shrink map, shrink mask), float32, editing ``polys`` and ``ignore_tags`` in place as
    PaddleOCR's ``MakeShrinkMap`` does (clipped, reoriented, words masked out tagged).

    A word is masked out where ignored, where its clipped extent is under ``min_text_size`` or
    its area under 1, and where no ratio of ``arange(r, 1, r)`` shrinks it to any path; else
    every path of the first ratio that gives exactly one path (or of the last one) is filled.
    """
    height, width = shape
    stacked = isinstance(polys, np.ndarray) and polys.ndim == 3
    _validate_in_place(polys, ignore_tags, height, width, stacked)
    shrink_map = np.zeros(shape, dtype=np.float32)
    mask = np.ones(shape, dtype=np.float32)
    sides = _smallest_sides(polys, stacked)
    kept = []
    for i in range(len(polys)):
        if ignore_tags[i] or sides[i] < min_text_size:
            cv2.fillPoly(mask, polys[i].astype(np.int32)[np.newaxis], 0)
            ignore_tags[i] = True
        else:
            kept.append(i)
    areas, lengths = measure(polys[kept] if stacked else [polys[i] for i in kept])
    factors = [float(1 - np.power(ratio, 2)) for ratio in np.arange(shrink_ratio, 1, shrink_ratio)]
    filled = []
    for i, area, length in zip(kept, areas.tolist(), lengths.tolist(), strict=True):
        shrunk = []
        clipper = offsetter(polys[i])
        for factor in factors:
            shrunk = clipper.Execute(-(area * factor / length))
            if len(shrunk) == 1:
                break
        if not shrunk:
            cv2.fillPoly(mask, polys[i].astype(np.int32)[np.newaxis], 0)
            ignore_tags[i] = True
        filled.extend(shrunk)
    for path in as_arrays(filled):
        cv2.fillPoly(shrink_map, [path], 1)
    return shrink_map, mask


def _validate_in_place(polys, ignore_tags, height: int, width: int, stacked: bool) -> None:
    """PaddleOCR's ``validate_polygons``: points clipped into the image, a word of area under 1
    tagged ignored, a word of positive area (in its point order) reversed."""
    if len(polys) == 0:
        return
    if len(polys) != len(ignore_tags):
        raise ValueError(f"got {len(ignore_tags)} ignore tags for {len(polys)} polygons")
    for polygon in [polys] if stacked else polys:
        if not np.isfinite(polygon).all():
            raise ValueError("polygons with non-finite coordinates")
        polygon[..., 0] = np.clip(polygon[..., 0], 0, width - 1)
        polygon[..., 1] = np.clip(polygon[..., 1], 0, height - 1)
    areas = _signed_areas(polys).tolist() if stacked else [_signed_areas(polygon) for polygon in polys]
    for i, area in enumerate(areas):
        if abs(area) < 1:
            ignore_tags[i] = True
        if area > 0:
            polys[i] = polys[i][::-1, :]


def _smallest_sides(polys, stacked: bool) -> Sequence[float]:
    """Each word's ``min(height, width)`` as PaddleOCR takes it, the extents in the points' dtype."""
    if stacked and len(polys):
        return (polys.max(axis=1) - polys.min(axis=1)).min(axis=1).tolist()
    return [np.min(polygon.max(axis=0) - polygon.min(axis=0)) for polygon in polys]


def _signed_areas(polygons: np.ndarray) -> np.ndarray:
    """PaddleOCR's ``polygon_area`` over the last two axes: ``sum(x_k y_(k-1) - y_k x_(k-1)) / 2``,
    each term in the points' dtype, summed in order from 0 in the type numpy gives ``0 + term``
    (float32 under numpy 2, float64 under numpy 1), halved."""
    x, y = polygons[..., 0], polygons[..., 1]
    terms = x * np.roll(y, 1, axis=-1) - y * np.roll(x, 1, axis=-1)
    accumulator = (0 + terms.dtype.type(0)).dtype
    return np.cumsum(terms, axis=-1, dtype=accumulator)[..., -1] / 2.0


def _words(polys: npt.ArrayLike, ignore_tags: npt.ArrayLike) -> list[np.ndarray]:
    """The words PaddleOCR's border op draws (not ignored), each a (K, 2) array, float32 or
    float64 kept as given (its arithmetic follows the dtype); other numbers are taken as
    float64, where integers are exact."""
    kept = [i for i in range(len(polys)) if not ignore_tags[i]]
    stacked = isinstance(polys, np.ndarray) and polys.ndim == 3 and polys.shape[2] == 2
    words = list(polys[kept]) if stacked else [np.asarray(polys[i]) for i in kept]
    for i, word in zip(kept, words, strict=True):
        if word.ndim != 2 or word.shape[1] != 2:
            raise ValueError(f"polygon {i}: expected shape (K, 2), got {word.shape}")
    words = [word if word.dtype in (np.float32, np.float64) else word.astype(np.float64) for word in words]
    finite = np.isfinite(polys[kept]).all(axis=(1, 2)) if stacked else [np.isfinite(word).all() for word in words]
    for i, word, ok in zip(kept, words, finite, strict=True):
        if not ok:
            raise ValueError(f"polygon {i}: non-finite coordinates {word.tolist()}")
    return words


def _scheduled(shrink_ratio: float, kwargs: dict) -> float:
    """PaddleOCR's schedule: the ratio grows by 0.2 over training when ``epoch`` and ``total_epoch`` are given."""
    if "total_epoch" in kwargs and "epoch" in kwargs and kwargs["epoch"] != "None":
        return shrink_ratio + 0.2 * kwargs["epoch"] / float(kwargs["total_epoch"])
    return shrink_ratio
