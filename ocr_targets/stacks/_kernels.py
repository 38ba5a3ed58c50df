"""The threshold-map kernel of the PaddleOCR and docTR stacks, compiled with numba.

Both stacks draw a word's border the same way, and not the baseline's way: over the box of
the word's first dilated path, in coordinates relative to that box, with the squared edge
length taken in the polygon's own dtype (float32 rounding at each step for float32
polygons), and without the baseline's eps terms. They differ only in the edge distance:

- PaddleOCR: ``cos = (e - d1 - d2) / (2 sqrt(d1 d2))``, ``sin^2 = nan_to_num(1 - cos^2)``,
  ``sqrt(d1 d2 sin^2 / e)``; a pixel on a vertex gives 0/0, NaN, and keeps the map's value;
- docTR: ``+ 1e-6`` in that denominator, ``cos`` clipped to [-1, 1], ``+ 1e-6`` under the root.

Where ``cos < 0`` both take the nearer endpoint. The speed comes from the same places as in
:mod:`ocr_targets.border`: one box row at a time, the minimum over edges taken on squared
distances before the one square root and division per pixel (``float32(clip(sqrt(r) / D,
0, 1))`` never decreases as ``r`` grows, and a negative or NaN ``r`` gives NaN either way),
scaled values max-merged, and each edge evaluated only within its capsule, where the value
can be below 1.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..border import merge_row

DOCTR_EPS = 1e-6  # the default ``eps`` of docTR's ``compute_distance``
# The capsule is widened by this much beyond D, relatively and in pixels, so that rounding in
# the stacks' arithmetic can never bring an excluded edge below 1.
_RELATIVE_MARGIN = 1e-3
_PIXEL_MARGIN = 1.0
_LARGEST = np.finfo(np.float64).max  # what nan_to_num makes of -inf


@numba.njit(cache=True, nogil=True, error_model="numpy")
def draw_borders(
    thresh_map: np.ndarray,  # float32 (h, w), scaled values, max-merged in place
    vertices: np.ndarray,  # (V, 2), the polygons' dtype: each word relative to its box origin
    starts: np.ndarray,  # int64 (words + 1,): word k owns vertices[starts[k]:starts[k + 1]]
    distances: np.ndarray,  # float64 (words,): the offset D of each word
    boxes: np.ndarray,  # int64 (B, 7): word, x0, y0, x1, y1 (relative, inclusive), map column and row of (x0, y0)
    scale: np.float32,  # thresh_max - thresh_min
    offset: np.float32,  # thresh_min
    doctr: bool,  # docTR's edge distance, else PaddleOCR's
) -> None:
    widest, most = 0, 0
    for b in range(boxes.shape[0]):
        widest = max(widest, boxes[b, 3] - boxes[b, 1] + 1)
    for k in range(starts.shape[0] - 1):
        most = max(most, starts[k + 1] - starts[k])
    nearest = np.empty(widest)  # least squared distance so far; NaN once any edge gave NaN
    squares = np.empty(widest)
    edges = np.empty((most, 5))  # per edge of the word: x and y of its start and end, its squared length
    spans = np.empty((most, 4), dtype=np.int64)  # per edge: its capsule's first and last row, first and end cell
    for b in range(boxes.shape[0]):
        word, x0, y0, x1, y1, column, row = (
            boxes[b, 0],
            boxes[b, 1],
            boxes[b, 2],
            boxes[b, 3],
            boxes[b, 4],
            boxes[b, 5],
            boxes[b, 6],
        )
        first, last = starts[word], starts[word + 1]
        distance = distances[word]
        reach = distance * (1 + _RELATIVE_MARGIN) + _PIXEL_MARGIN
        width = x1 - x0 + 1
        for e in range(last - first):
            i = first + e
            j = i + 1 if i + 1 < last else first
            dx, dy = vertices[i, 0] - vertices[j, 0], vertices[i, 1] - vertices[j, 1]
            x_start, y_start = float(vertices[i, 0]), float(vertices[i, 1])
            x_end, y_end = float(vertices[j, 0]), float(vertices[j, 1])
            edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3] = x_start, y_start, x_end, y_end
            edges[e, 4] = float(dx * dx + dy * dy)  # in the polygons' dtype, as the stacks compute it
            spans[e, 0] = math.ceil(min(y_start, y_end) - reach)
            spans[e, 1] = math.floor(max(y_start, y_end) + reach)
            spans[e, 2] = max(x0, math.floor(min(x_start, x_end) - reach)) - x0
            spans[e, 3] = min(x1, math.ceil(max(x_start, x_end) + reach)) - x0 + 1
        for y in range(y0, y1 + 1):
            nearest[:width] = np.inf
            for e in range(last - first):
                if y < spans[e, 0] or y > spans[e, 1]:
                    continue
                begin, end = spans[e, 2], spans[e, 3]
                x_start, y_start, x_end, y_end, square_edge = (
                    edges[e, 0],
                    edges[e, 1],
                    edges[e, 2],
                    edges[e, 3],
                    edges[e, 4],
                )
                if doctr:
                    _doctr_squares(
                        squares, begin, end, float(x0), float(y), x_start, y_start, x_end, y_end, square_edge
                    )
                else:
                    _paddle_squares(
                        squares, begin, end, float(x0), float(y), x_start, y_start, x_end, y_end, square_edge
                    )
                for k in range(begin, end):  # np.min over edges: NaN wins
                    square, least = squares[k], nearest[k]
                    nearest[k] = square if (square < least) | (square != square) else least
            merge_row(thresh_map[row + y - y0, column : column + width], nearest, width, distance, scale, offset)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _paddle_squares(squares, begin, end, x0, y, x_start, y_start, x_end, y_end, square_edge):
    """The square of PaddleOCR's edge distance over row cells [begin, end), in its order of operations."""
    square_y_1 = _square(y - y_start)
    square_y_2 = _square(y - y_end)
    for k in range(begin, end):
        x = x0 + k
        square_1 = _square(x - x_start) + square_y_1
        square_2 = _square(x - x_end) + square_y_2
        cosin = (square_edge - square_1 - square_2) / (2 * np.sqrt(square_1 * square_2))
        square_sin = 1 - _square(cosin)
        square_sin = square_sin if square_sin == square_sin else 0.0  # nan_to_num
        square_sin = square_sin if square_sin != -np.inf else -_LARGEST
        line = square_1 * square_2 * square_sin / square_edge
        endpoint = square_1 if square_1 < square_2 else square_2
        squares[k] = endpoint if cosin < 0 else line


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _doctr_squares(squares, begin, end, x0, y, x_start, y_start, x_end, y_end, square_edge):
    """The square of docTR's edge distance over row cells [begin, end), in its order of operations."""
    square_y_1 = _square(y - y_start)
    square_y_2 = _square(y - y_end)
    for k in range(begin, end):
        x = x0 + k
        square_1 = _square(x - x_start) + square_y_1
        square_2 = _square(x - x_end) + square_y_2
        cosin = (square_edge - square_1 - square_2) / (2 * np.sqrt(square_1 * square_2) + DOCTR_EPS)
        cosin = -1.0 if cosin < -1 else cosin
        cosin = 1.0 if cosin > 1 else cosin
        square_sin = 1 - _square(cosin)
        square_sin = square_sin if square_sin == square_sin else 0.0  # nan_to_num
        line = square_1 * square_2 * square_sin / square_edge + DOCTR_EPS
        endpoint = square_1 if square_1 < square_2 else square_2
        squares[k] = endpoint if cosin < 0 else line


@numba.njit(cache=True, inline="always")
def _square(value):
    return value * value
