"""The competition baseline's on-the-fly DB target maker as of 2025-10-08 (``DBCollateFN.
make_prob_thresh_map`` of ocr/datasets/db_collate_fn.py), kept as close to it as possible.

Only the tests use it, to show that `reference_targets` computes what the baseline
computed (where the baseline did not raise): the skip of polygons whose area, perimeter
or offset is not positive, and the two eps terms of the distance.
"""

import cv2
import numpy as np
import pyclipper


def baseline_maps(shape, polygons, shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7):
    h, w = shape
    prob_map = np.zeros((h, w), dtype=np.float32)
    thresh_map = np.zeros((h, w), dtype=np.float32)
    for poly in polygons:
        poly = np.asarray(poly).reshape(1, -1, 2).astype(np.int32)
        if poly.size < 3:
            continue
        area = cv2.contourArea(poly)
        if area <= 0:
            continue
        L = cv2.arcLength(poly, True)
        if L <= 0:
            continue
        eps = np.finfo(float).eps
        D = area * (1 - shrink_ratio**2) / (L + eps)
        if D <= eps:
            continue
        pco = pyclipper.PyclipperOffset()
        pco.AddPaths(poly, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        for s in pco.Execute(-D):
            cv2.fillPoly(prob_map, [np.array(s)], 1.0)
        for d in pco.Execute(D):
            dilated_poly = np.array(d)
            xmin, xmax = dilated_poly[:, 0].min(), dilated_poly[:, 0].max()
            ymin, ymax = dilated_poly[:, 1].min(), dilated_poly[:, 1].max()
            width, height = xmax - xmin + 1, ymax - ymin + 1
            polygon = poly[0].copy()
            polygon[:, 0] = polygon[:, 0] - xmin
            polygon[:, 1] = polygon[:, 1] - ymin
            xs = np.broadcast_to(np.linspace(0, width - 1, num=width).reshape(1, width), (height, width))
            ys = np.broadcast_to(np.linspace(0, height - 1, num=height).reshape(height, 1), (height, width))
            distance_map = np.zeros((polygon.shape[0], height, width), dtype=np.float32)
            for i in range(polygon.shape[0]):
                j = (i + 1) % polygon.shape[0]
                absolute_distance = _distance(xs, ys, polygon[i], polygon[j])
                distance_map[i] = np.clip(absolute_distance / D, 0, 1)
            distance_map = distance_map.min(axis=0)
            xmin_valid = min(max(0, xmin), thresh_map.shape[1] - 1)
            xmax_valid = min(max(0, xmax), thresh_map.shape[1] - 1)
            ymin_valid = min(max(0, ymin), thresh_map.shape[0] - 1)
            ymax_valid = min(max(0, ymax), thresh_map.shape[0] - 1)
            thresh_map[ymin_valid : ymax_valid + 1, xmin_valid : xmax_valid + 1] = np.fmax(
                1
                - distance_map[
                    ymin_valid - ymin : ymax_valid - ymax + height, xmin_valid - xmin : xmax_valid - xmax + width
                ],
                thresh_map[ymin_valid : ymax_valid + 1, xmin_valid : xmax_valid + 1],
            )
    thresh_map = thresh_map * (thresh_max - thresh_min) + thresh_min
    return prob_map, thresh_map


def _distance(xs, ys, point_1, point_2):
    square_distance_1 = np.square(xs - point_1[0]) + np.square(ys - point_1[1])
    square_distance_2 = np.square(xs - point_2[0]) + np.square(ys - point_2[1])
    square_distance = np.square(point_1[0] - point_2[0]) + np.square(point_1[1] - point_2[1]) + np.finfo(float).eps
    denom = 2 * np.sqrt(square_distance_1 * square_distance_2) + np.finfo(float).eps
    cosin = (square_distance - square_distance_1 - square_distance_2) / denom
    square_sin = 1 - np.square(cosin)
    square_sin = np.nan_to_num(square_sin)
    result = np.sqrt(square_distance_1 * square_distance_2 * square_sin / square_distance)
    result[cosin < 0] = np.sqrt(np.fmin(square_distance_1, square_distance_2))[cosin < 0]
    return result
