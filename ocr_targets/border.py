"""The threshold-map kernel of the fast path, compiled with numba.

It computes what the reference (`maps._draw_border_reference`) computes, to the last
bit, and is fast for four reasons:

- no (edges, height, width) temporaries: one row of one box at a time;
- the minimum over edges is taken before the square root and the division by D.
  ``float32(clip(sqrt(r) / D, 0, 1))`` never decreases as ``r`` grows (each step is
  correctly rounded and monotone), so it commutes with the minimum: one square root
  and one division per pixel instead of per edge, the same bits;
- the map holds scaled values (``t * (thresh_max - thresh_min) + thresh_min`` in
  float32, as the reference scales at the end): scaling is monotone, so max-merging
  scaled values is scaling the max-merged ones, and no pass over the whole map is left;
- each edge is evaluated only inside its capsule (the pixels within about D of it),
  in a branch-free loop that compiles to SIMD code; elsewhere the reference's
  ``clip(distance / D, 0, 1)`` is exactly 1 and cannot lower the minimum.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .geometry import EPS

# The capsule is widened by this much beyond D, relatively and in pixels, so that
# rounding in the reference can never bring an excluded edge below 1.
_RELATIVE_MARGIN = 1e-3
_PIXEL_MARGIN = 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def draw_borders(
    thresh_map: np.ndarray,  # float32 (h, w), scaled values, max-merged in place
    vertices: np.ndarray,  # float64 (V, 2): every word's polygon, one after another
    starts: np.ndarray,  # int64 (words + 1,): word k owns vertices[starts[k]:starts[k + 1]]
    distances: np.ndarray,  # float64 (words,): the offset D of each word
    boxes: np.ndarray,  # int64 (B, 5): word, x0, y0, x1, y1 (inclusive, inside the map)
    scale: np.float32,  # thresh_max - thresh_min
    offset: np.float32,  # thresh_min
) -> None:
    widest = 0
    for b in range(boxes.shape[0]):
        widest = max(widest, boxes[b, 3] - boxes[b, 1] + 1)
    nearest = np.empty(widest)  # least squared distance so far; NaN once any edge gave NaN
    squares = np.empty(widest)
    for b in range(boxes.shape[0]):
        word, x0, y0, x1, y1 = boxes[b, 0], boxes[b, 1], boxes[b, 2], boxes[b, 3], boxes[b, 4]
        first, last = starts[word], starts[word + 1]
        distance = distances[word]
        reach = distance * (1 + _RELATIVE_MARGIN) + _PIXEL_MARGIN
        width = x1 - x0 + 1
        for y in range(y0, y1 + 1):
            nearest[:width] = np.inf
            for i in range(first, last):
                j = i + 1 if i + 1 < last else first
                x_start, y_start, x_end, y_end = vertices[i, 0], vertices[i, 1], vertices[j, 0], vertices[j, 1]
                if y < min(y_start, y_end) - reach or y > max(y_start, y_end) + reach:
                    continue
                begin = max(x0, math.floor(min(x_start, x_end) - reach)) - x0
                end = min(x1, math.ceil(max(x_start, x_end) + reach)) - x0 + 1
                _edge_squares(squares, begin, end, float(x0), float(y), x_start, y_start, x_end, y_end)
                for k in range(begin, end):  # np.min over edges: NaN wins
                    square, least = squares[k], nearest[k]
                    nearest[k] = square if (square < least) | (square != square) else least
            merge_row(thresh_map[y, x0 : x1 + 1], nearest, width, distance, scale, offset)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def merge_row(row, nearest, width, distance, scale, offset):
    """``1 - clip(sqrt(nearest) / distance, 0, 1)``, scaled, max-merged into a row of the map: the
    last steps of every stack's threshold map, in this order of operations."""
    for k in range(width):
        value = np.sqrt(nearest[k]) / distance
        value = 0.0 if value < 0 else value
        value = 1.0 if value > 1 else value  # NaN passes through both, as in np.clip
        merged = (np.float32(1.0) - np.float32(value)) * scale + offset
        row[k] = merged if merged > row[k] else row[k]  # np.fmax: a NaN leaves the row as it was


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _edge_squares(squares, begin, end, x0, y, x_start, y_start, x_end, y_end):
    """The square of the reference's edge distance over row cells [begin, end).

    In the reference's order of operations, eps terms included: the nearer endpoint
    where ``cosin < 0``, else the edge's line. Branch-free, so that it compiles to SIMD code.
    """
    square_y_1 = _square(y - y_start)
    square_y_2 = _square(y - y_end)
    square_edge = _square(x_start - x_end) + _square(y_start - y_end) + EPS
    for k in range(begin, end):
        x = x0 + k
        square_1 = _square(x - x_start) + square_y_1
        square_2 = _square(x - x_end) + square_y_2
        cosin = (square_edge - square_1 - square_2) / (2 * np.sqrt(square_1 * square_2) + EPS)
        square_sin = 1 - _square(cosin)
        square_sin = square_sin if square_sin == square_sin else 0.0  # nan_to_num
        line = square_1 * square_2 * square_sin / square_edge
        endpoint = square_1 if square_1 < square_2 else square_2
        squares[k] = endpoint if cosin < 0 else line


@numba.njit(cache=True, inline="always")
def _square(value):
    return value * value
