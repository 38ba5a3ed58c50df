"""An independent statement of the DB target maps, for the tests: written from the target
semantics (truncate, skip, offset, fill, the edge distance with its two eps terms, the
max-merge, the scaling), not from any implementation's code.

The threshold map here takes every edge of a word at once, as an (edges, rows, columns)
stack, and writes the distance formula term by term. Where floating point can surprise, the
facts are spelled out: a negative value under the square root gives NaN (the rounding of
``1 - cos^2`` on a pixel collinear with an edge), a NaN distance makes that pixel's minimum
over edges NaN, and a NaN is never merged into the map.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyclipper

EPS = np.finfo(np.float64).eps


def oracle_maps(shape, polygons, shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7):
    """(probability map, threshold map), float32 ``shape``, of ``polygons`` ((N, 2) or (1, N, 2))."""
    height, width = shape
    probability = np.zeros(shape, np.float32)
    border = np.zeros(shape, np.float32)
    for polygon in polygons:
        points = np.asarray(polygon).astype(np.int32)  # truncation towards zero
        if points.size < 3:
            continue
        points = points.reshape(-1, 2)
        area, length = cv2.contourArea(points), cv2.arcLength(points, True)
        if area <= 0 or length <= 0:
            continue
        offset = area * (1 - shrink_ratio**2) / (length + EPS)
        if offset <= EPS:
            continue
        clipper = pyclipper.PyclipperOffset()
        clipper.AddPath(points.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        for path in clipper.Execute(-offset):
            cv2.fillPoly(probability, [np.array(path, np.int32)], 1.0)
        for path in clipper.Execute(offset):
            path = np.array(path)
            left, top = max(path[:, 0].min(), 0), max(path[:, 1].min(), 0)
            right, bottom = min(path[:, 0].max(), width - 1), min(path[:, 1].max(), height - 1)
            if left > right or top > bottom:
                continue  # the box lies outside the image
            near = 1 - _scaled_distance(points, offset, left, top, right, bottom)
            window = border[top : bottom + 1, left : right + 1]
            window[...] = np.where(np.isnan(near), window, np.maximum(window, near))
    return probability, border * (thresh_max - thresh_min) + thresh_min


def _scaled_distance(points, offset, left, top, right, bottom):
    """min over the word's edges of clip(distance / offset, 0, 1), float32, over the box."""
    x = np.arange(left, right + 1, dtype=np.float64)[None, None, :]
    y = np.arange(top, bottom + 1, dtype=np.float64)[None, :, None]
    start = points.astype(np.float64)[:, :, None, None]
    end = np.roll(points, -1, axis=0).astype(np.float64)[:, :, None, None]
    to_start = (x - start[:, 0]) ** 2 + (y - start[:, 1]) ** 2
    to_end = (x - end[:, 0]) ** 2 + (y - end[:, 1]) ** 2
    edge = (start[:, 0] - end[:, 0]) ** 2 + (start[:, 1] - end[:, 1]) ** 2 + EPS
    with np.errstate(invalid="ignore"):
        cos = (edge - to_start - to_end) / (2 * np.sqrt(to_start * to_end) + EPS)
        sin_squared = np.nan_to_num(1 - cos**2)
        to_line = np.sqrt(to_start * to_end * sin_squared / edge)
        to_vertex = np.sqrt(np.minimum(to_start, to_end))
        distance = np.where(cos < 0, to_vertex, to_line)
        return np.clip(distance / offset, 0, 1).astype(np.float32).min(axis=0)
