"""The compiled per-word geometry against what the reference calls: each word's D against OpenCV's
area and perimeter, each dilated path against pyclipper, point for point, in Clipper's order."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.synthetic import receipt_polygons
from ocr_targets.geometry import as_polygons, clipper_offset, shrink_distance
from ocr_targets.offsets import _dilate, dilate, shrink_distances
from tests.helpers import examples


def certified(polygons, distances) -> np.ndarray:
    """Which words the compiled pass answered itself (the rest went to pyclipper)."""
    starts = np.cumsum([0] + [len(polygon) for polygon in polygons])
    return _dilate(np.concatenate(polygons).astype(np.int64), starts, np.array(distances, dtype=np.float64))[2]


def assert_as_pyclipper(polygons, distances):
    for polygon, distance, paths in zip(polygons, distances, dilate(polygons, distances), strict=True):
        expected = clipper_offset(polygon, distance)
        assert [path.tolist() for path in paths] == [path.tolist() for path in expected], (polygon.tolist(), distance)
        assert all(path.dtype == np.int32 for path in paths)


def words_with_offsets(polygons):
    """The words the maps dilate, each with its offset D (shrink ratio 0.4)."""
    words = [(polygon, shrink_distance(polygon, 0.4)) for polygon in as_polygons(polygons) if len(polygon) >= 3]
    return [polygon for polygon, d in words if d], [d for _, d in words if d]


@pytest.mark.parametrize("seed", range(3))
def test_receipt_words_equal_pyclipper_and_most_are_compiled(seed):
    polygons, distances = words_with_offsets(receipt_polygons(np.random.default_rng(seed)))
    assert_as_pyclipper(polygons, distances)
    assert certified(polygons, distances).mean() > 0.8  # the compiled branch is what runs


def random_words(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Tilted boxes, thin slivers at any angle, tiny polygons on a small grid, random star
    polygons (often concave): the shapes where Clipper's rounding shows."""
    words = []
    for k in range(count):
        kind = k % 4
        if kind == 0:
            w, h = rng.uniform(1, 80), rng.uniform(1, 20)
            corners = np.array([[0, 0], [w, 0], [w, h], [0, h]]) + rng.uniform(0, 600, 2)
            word = corners + rng.normal(0, rng.choice([0.3, 0.7, 3]), (4, 2))
        elif kind == 1:
            along = rng.uniform(0, np.pi)
            u, v = np.array([np.cos(along), np.sin(along)]), np.array([-np.sin(along), np.cos(along)])
            length, width = rng.integers(2, 200), rng.uniform(0.5, 4)
            word = np.rint(np.array([0 * u, length * u, length * u + width * v, width * v]) + rng.integers(0, 100, 2))
        elif kind == 2:
            word = rng.integers(0, 12, (rng.integers(3, 7), 2))
        else:
            angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 9)))
            radii = rng.uniform(1, 60) * rng.uniform(0.3, 1, len(angles))
            word = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None] + rng.uniform(0, 600, 2)
        words.append((word if rng.random() < 0.5 else word[::-1]).astype(np.int32))
    return words


def test_random_and_adversarial_words_equal_pyclipper():
    polygons, distances = words_with_offsets(random_words(np.random.default_rng(11), examples(40_000)))
    assert_as_pyclipper(polygons, distances)
    assert 0.3 < certified(polygons, distances).mean() < 1  # both branches ran


def test_a_sliver_thinner_than_the_rounding_is_left_to_pyclipper():
    # Convex and simple, yet Clipper's union rounds its two sides together and returns nothing.
    sliver = np.array([[2, 0], [0, 7], [0, 9]], dtype=np.int32)
    assert clipper_offset(sliver, 0.0908) == []
    assert not certified([sliver], [0.0908])[0]
    assert dilate([sliver], [0.0908]) == [[]]


coordinate = st.integers(-50, 250)


@settings(max_examples=examples(500), deadline=None)
@given(
    st.lists(st.lists(st.tuples(coordinate, coordinate), min_size=1, max_size=9), min_size=1, max_size=6),
    st.lists(st.floats(1e-6, 60), min_size=6, max_size=6),
)
def test_any_words_at_any_offset_equal_pyclipper(words, distances):
    polygons = [np.array(word, dtype=np.int32) for word in words]
    assert_as_pyclipper(polygons, distances[: len(polygons)])


@settings(max_examples=examples(500), deadline=None)
@given(
    st.lists(st.lists(st.tuples(coordinate, coordinate), min_size=2, max_size=9), min_size=1, max_size=6),
    st.floats(0.05, 0.95),
)
def test_each_words_offset_equals_opencvs(words, ratio):
    polygons = [np.array(word, dtype=np.int32) for word in words]
    assert shrink_distances(polygons, ratio) == [shrink_distance(polygon, ratio) for polygon in polygons]


def test_offsets_of_receipts_and_of_far_and_odd_words_equal_opencvs():
    rng = np.random.default_rng(5)
    polygons = as_polygons(receipt_polygons(rng)) + random_words(rng, examples(20_000))
    polygons += [np.array(word, dtype=np.int32) for word in ([[0, 0], [9, 0]], [[3, 3], [3, 3], [3, 3]])]
    far = [polygon * 4099 + 7_000_001 for polygon in random_words(rng, 200)]  # sums far from exact in float32
    for group in (polygons, far):
        assert shrink_distances(group, 0.4) == [shrink_distance(polygon, 0.4) for polygon in group]
    assert shrink_distances(polygons[-2:], 0.4) == [None, None]  # words the baseline skips


def test_float_words_and_offsets_near_zero_equal_pyclipper():
    # The stacks' words are floats, which Clipper truncates; docTR offsets a Z-ordered quad by 0.
    rng = np.random.default_rng(8)
    words = [word + rng.uniform(-0.99, 0.99, word.shape) for word in random_words(rng, 400)]
    distances = rng.choice([0.0, 1e-21, 1e-19, 0.3, 4.5], len(words)).tolist()
    for polygon, distance, paths in zip(words, distances, dilate(words, distances), strict=True):
        assert [path.tolist() for path in paths] == [path.tolist() for path in clipper_offset(polygon, distance)]


def test_an_offset_beyond_any_word_is_left_to_pyclipper():
    # Clipper would draw about 1e8 points a corner; the compiled pass must not size buffers for them.
    triangle = np.array([[0, 0], [40, 0], [0, 30]], dtype=np.int32)
    assert not certified([triangle], [1e15])[0]
    assert certified([triangle], [5.0])[0]
