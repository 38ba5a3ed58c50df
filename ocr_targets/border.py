"""The threshold-map kernel of the fast path, compiled with numba.

It evaluates the reference's floating-point expression (`maps._edge_distance`)
operation for operation, so the two paths agree to the last bit, NaN included.
Its speed comes from three things: no (edges, height, width) temporaries, a
branch-free inner loop over a row that compiles to SIMD code, and evaluating each
edge only inside its capsule (the pixels within about D of it): everywhere else the
reference's ``clip(distance / D, 0, 1)`` is exactly 1 and cannot lower the minimum.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# The capsule is widened by this much beyond D, relatively and in pixels, so that
# rounding in the reference can never bring an excluded edge below 1.
_RELATIVE_MARGIN = 1e-3
_PIXEL_MARGIN = 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def draw_borders(
    thresh_map: np.ndarray,  # float32 (h, w), max-merged in place
    vertices: np.ndarray,  # float64 (V, 2): every word's polygon, one after another
    starts: np.ndarray,  # int64 (words + 1,): word k owns vertices[starts[k]:starts[k + 1]]
    distances: np.ndarray,  # float64 (words,): the offset D of each word
    boxes: np.ndarray,  # int64 (B, 5): word, x0, y0, x1, y1 (inclusive, inside the map)
) -> None:
    widest = 0
    for b in range(boxes.shape[0]):
        widest = max(widest, boxes[b, 3] - boxes[b, 1] + 1)
    nearest = np.empty(widest, dtype=np.float32)  # min over edges so far; NaN once any edge was NaN
    values = np.empty(widest, dtype=np.float32)
    for b in range(boxes.shape[0]):
        word, x0, y0, x1, y1 = boxes[b, 0], boxes[b, 1], boxes[b, 2], boxes[b, 3], boxes[b, 4]
        first, last = starts[word], starts[word + 1]
        distance = distances[word]
        reach = distance * (1 + _RELATIVE_MARGIN) + _PIXEL_MARGIN
        width = x1 - x0 + 1
        for y in range(y0, y1 + 1):
            nearest[:width] = 1.0
            for i in range(first, last):
                j = i + 1 if i + 1 < last else first
                x_start, y_start, x_end, y_end = vertices[i, 0], vertices[i, 1], vertices[j, 0], vertices[j, 1]
                if y < min(y_start, y_end) - reach or y > max(y_start, y_end) + reach:
                    continue
                left = max(x0, math.floor(min(x_start, x_end) - reach))
                right = min(x1, math.ceil(max(x_start, x_end) + reach))
                begin, end = left - x0, right - x0 + 1
                _edge_row(values, begin, end, float(x0), float(y), x_start, y_start, x_end, y_end, distance)
                for k in range(begin, end):  # np.min over edges: NaN wins
                    value, least = values[k], nearest[k]
                    nearest[k] = value if (value < least) | (value != value) else least
            row = thresh_map[y, x0 : x1 + 1]
            for k in range(width):  # np.fmax(1 - nearest, row): a NaN leaves the row as it was
                merged = np.float32(1.0) - nearest[k]
                row[k] = merged if merged > row[k] else row[k]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _edge_row(values, begin, end, x0, y, x_start, y_start, x_end, y_end, distance):
    """``float32(clip(edge_distance / D, 0, 1))`` of one edge over row cells [begin, end).

    The reference's expression in its order of operations: the distance to the
    nearer endpoint where ``cosin < 0``, else to the edge's line. Branch-free, so
    that it compiles to SIMD code.
    """
    square_y_1 = _square(y - y_start)
    square_y_2 = _square(y - y_end)
    square_edge = _square(x_start - x_end) + _square(y_start - y_end)
    for k in range(begin, end):
        x = x0 + k
        square_1 = _square(x - x_start) + square_y_1
        square_2 = _square(x - x_end) + square_y_2
        cosin = (square_edge - square_1 - square_2) / (2 * np.sqrt(square_1 * square_2))
        square_sin = 1 - _square(cosin)
        square_sin = square_sin if square_sin == square_sin else 0.0  # nan_to_num
        line = square_1 * square_2 * square_sin / square_edge
        endpoint = square_1 if square_1 < square_2 else square_2
        value = np.sqrt(endpoint if cosin < 0 else line) / distance
        value = 0.0 if value < 0 else value
        value = 1.0 if value > 1 else value  # NaN passes through both, as in np.clip
        values[k] = np.float32(value)


@numba.njit(cache=True, inline="always")
def _square(value):
    return value * value
