"""docTR 1.1's DBNet targets, bit for bit and about 10x faster: a replacement of
``_DBNet.build_target`` (``doctr/models/detection/differentiable_binarization/base.py``),
installed on a model in one line::

    ocr_targets.stacks.doctr.install(model)  # model = doctr.models.db_resnet50(...)
    ocr_targets.stacks.doctr.install(model, "val.zarr")  # or: a store's pages read, not computed

docTR builds its targets inside the loss, every step, validation included: relative boxes
(N, 4) or polygons (N, P, 2) per class, targets at the output size. A word whose box is under
``min_size_box`` pixels, or that shrinks to nothing or to an invalid polygon, masks its
bounding box out of the probability mask.

Where docTR's ``draw_thresh_map`` raises (a self-crossing word on the page's edge whose first
dilated path lies wholly outside the map: a broadcast ValueError), the word's border is
skipped instead, as if that call had returned, and counted in ``model.skipped_words``.
"""

from __future__ import annotations

import types
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import shapely

from ..geometry import clipper_offsets
from ..offsets import dilate
from ._draw import draw_words, measure, shapes

if TYPE_CHECKING:
    from ..store import TargetStore


def install(model: object, store: TargetStore | str | Path | None = None) -> None:
    """Make ``model`` (a docTR DBNet) build its targets with :func:`build_target`; with ``store``
    (one made by ``ocr-targets precompute --stack doctr``, or its path), read the pages it holds
    instead, counted in ``model.stored_pages`` ("hit": read, "miss": computed).

    A store made for another stack is refused (OtherStack), and so is one made with other
    parameters than the model's or whose threshold maps are not float32 (ValueError)."""
    model.skipped_words = Counter()  # words whose border docTR's own code would have raised for
    if store is None:
        model.build_target = types.MethodType(build_target, model)
        return
    from .doctr_stored import StoredTargets  # it builds on this module's build_target

    model.stored_targets = StoredTargets(store, model)
    model.stored_pages = Counter()
    model.build_target = types.MethodType(build_stored_target, model)


def build_stored_target(
    self: object, target: list[dict[str, np.ndarray]], output_shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`build_target`, the pages ``self.stored_targets`` holds read from its store."""
    stored = [self.stored_targets.find(page, output_shape) for page in target]
    hits = [k for k, entry in enumerate(stored) if entry is not None]
    misses = [k for k, entry in enumerate(stored) if entry is None]
    computed = build_target(self, [target[k] for k in misses], output_shape)  # and docTR's checks of them
    built = tuple(np.empty((len(target), *part.shape[1:]), dtype=part.dtype) for part in computed)
    for whole, part in zip(built, computed, strict=True):
        whole[misses] = part
    if hits:
        self.stored_targets.read([stored[k] for k in hits], built, hits)
    self.stored_pages.update(hit=len(hits), miss=len(misses))
    return built


def build_target(
    self: object, target: list[dict[str, np.ndarray]], output_shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(probability map, its mask, threshold map, its mask) of shape (batch, classes, h, w),
    float32, bool, float32, bool: docTR 1.1's ``build_target`` of ``self`` (its
    ``shrink_ratio``, ``thresh_min``, ``thresh_max``, ``min_size_box``), bit for bit."""
    if any(array.dtype != np.float32 for page in target for array in page.values()):
        raise AssertionError("the expected dtype of target 'boxes' entry is 'np.float32'.")
    if any(np.any((array[:, :4] > 1) | (array[:, :4] < 0)) for page in target for array in page.values()):
        raise ValueError("the 'boxes' entry of the target is expected to take values between 0 & 1.")
    classes, height, width = output_shape
    shape = (len(target), classes, height, width)
    scale, offset = np.float32(self.thresh_max - self.thresh_min), np.float32(self.thresh_min)
    seg_target = np.zeros(shape, dtype=np.float32)
    seg_mask = np.ones(shape, dtype=bool)
    thresh_target = np.full(shape, offset, dtype=np.float32)  # the scaled zero
    thresh_mask = np.zeros(shape, dtype=np.uint8)
    for page, words in enumerate(target):
        for label, relative in enumerate(words.values()):
            if relative.shape[0] == 0:
                seg_mask[page, label] = False  # a page without words is masked out whole
            polygons, boxes, sizes = _absolute(relative, height, width)
            skipped = _draw_class(
                self,
                polygons,
                boxes,
                sizes,
                seg_target[page, label],
                seg_mask[page, label],
                thresh_target[page, label],
                thresh_mask[page, label],
                scale,
                offset,
            )
            if skipped:
                vars(self).setdefault("skipped_words", Counter())["outside the map"] += skipped
    return seg_target, seg_mask, thresh_target, thresh_mask.astype(bool)


def _absolute(relative: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """docTR's words in output pixels: (polygons, integer boxes x0 y0 x1 y1, sizes).

    Polygons (N, P, 2) are scaled in float32 and kept so, sized by the length of their
    diagonal from point 0 to point 2, boxed by their rounded extremes. Boxes (N, 4) are
    scaled and rounded to int32 first, their polygons the four int32 corners, sized by their
    shorter side.
    """
    if relative.ndim == 3:
        polygons = relative * np.array([width, height], dtype=np.float32)
        sizes = np.linalg.norm(polygons[:, 2, :] - polygons[:, 0, :], axis=-1)
        boxes = np.concatenate((polygons.min(axis=1), polygons.max(axis=1)), axis=-1).round().astype(np.int32)
        return polygons, boxes, sizes
    boxes = (relative * np.array([width, height, width, height], dtype=np.float32)).round().astype(np.int32)
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    polygons = np.stack([np.stack(corner, axis=-1) for corner in [(x0, y0), (x0, y1), (x1, y1), (x1, y0)]], axis=1)
    return polygons, boxes, np.minimum(x1 - x0, y1 - y0)


def _draw_class(self, polygons, boxes, sizes, seg_target, seg_mask, thresh_target, thresh_mask, scale, offset) -> int:
    """The words of one class of one page, into that page's maps (views, edited in place);
    return how many borders were skipped where docTR's code raises."""
    rejected = [k for k in range(len(polygons)) if sizes[k] < self.min_size_box]
    kept = [k for k in range(len(polygons)) if not sizes[k] < self.min_size_box]
    areas, lengths = measure(polygons[kept])
    factor = float(1 - np.power(self.shrink_ratio, 2))  # Python floats: numpy's float64 arithmetic
    offsets = [area * factor / length for area, length in zip(areas.tolist(), lengths.tolist(), strict=True)]
    shrunk, candidates = [], []
    inward = clipper_offsets([polygons[k] for k in kept], [-distance for distance in offsets])
    for k, distance, paths in zip(kept, offsets, inward, strict=True):
        if paths and len(paths[0]) > 2:
            shrunk.append(paths[0])
            candidates.append((k, distance))
        else:
            rejected.append(k)
    valid = shapely.is_valid(shapes(shrunk)).tolist() if shrunk else []
    words, distances = [], []
    for (k, distance), path, ok in zip(candidates, shrunk, valid, strict=True):
        if not ok:
            rejected.append(k)
            continue
        cv2.fillPoly(seg_target, [path], 1.0)
        words.append(polygons[k])
        distances.append(distance)
    dilated = [paths[0] for paths in dilate(words, distances)]
    for path in dilated:
        cv2.fillPoly(thresh_mask, [path], 1)
    for k in rejected:
        x0, y0, x1, y1 = boxes[k].tolist()
        seg_mask[y0 : y1 + 1, x0 : x1 + 1] = False
    return int(draw_words(thresh_target, words, distances, dilated, scale, offset, doctr=True).sum())
