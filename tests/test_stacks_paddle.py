"""The PaddleOCR stack against PaddleOCR 2.10's own ``MakeBorderMap`` and ``MakeShrinkMap``,
imported from the released wheel: every map, every mask and the in-place edits, bit for bit.

Where PaddleOCR's border op raises for a word, ours skips that word: its output must equal
PaddleOCR's on the same input with that word ignored, and the word must be counted.
"""

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.synthetic import receipt_polygons
from ocr_targets import compute_targets
from ocr_targets.stacks import paddle, stack
from ocr_targets.stacks.released import paddle_ops
from tests.helpers import examples

KEYS = ("threshold_map", "threshold_mask", "shrink_map", "shrink_mask", "polys", "ignore_tags")


def sample(shape, polys, tags) -> dict:
    return {"image": np.zeros((*shape, 3), np.uint8), "polys": polys, "ignore_tags": tags}


def crashing_words(data: dict, shrink_ratio: float = 0.4) -> list[int]:
    """The words PaddleOCR's border op raises for, each tried alone on a scratch canvas."""
    border = paddle_ops()[0](shrink_ratio=shrink_ratio)
    shape = data["image"].shape[:2]
    crashes = []
    for i, polygon in enumerate(data["polys"]):
        if data["ignore_tags"][i]:
            continue
        try:
            with np.errstate(all="ignore"):
                border.draw_border_map(polygon, np.zeros(shape, np.float32), mask=np.zeros(shape, np.float32))
        except (IndexError, ValueError):
            crashes.append(i)
    return crashes


def theirs(data: dict, ignored_by_border=(), **params) -> dict:
    """PaddleOCR's two ops in training order, on a copy; ``ignored_by_border`` hidden from the border op."""
    border, shrink = paddle_ops()
    data = copy.deepcopy(data)
    tags = data["ignore_tags"]
    data["ignore_tags"] = [bool(tag) or i in ignored_by_border for i, tag in enumerate(tags)]
    with np.errstate(all="ignore"):
        data = border(**params)(data)
        data["ignore_tags"] = tags
        return shrink(**params)(data)


def ours(data: dict, **params) -> tuple[dict, paddle.MakeBorderMap]:
    data = copy.deepcopy(data)
    border = paddle.MakeBorderMap(**params)
    return paddle.MakeShrinkMap(**params)(border(data)), border


def assert_same(expected: dict, got: dict) -> None:
    for key in KEYS:
        assert type(got[key]) is type(expected[key]), key
        pairs = zip(got[key], expected[key], strict=True) if isinstance(got[key], list) else [(got[key], expected[key])]
        for mine, their in pairs:
            assert np.asarray(mine).dtype == np.asarray(their).dtype, key
            assert np.array_equal(mine, their), f"{key}: {np.sum(np.asarray(mine) != their)} differ"


def check(data: dict, **params) -> int:
    """Compare on one sample; return how many words PaddleOCR's border op would have raised for."""
    crashes = crashing_words(data, params.get("shrink_ratio", 0.4))
    got, border = ours(data, **params)
    assert_same(theirs(data, crashes, **params), got)
    assert sum(border.skipped.values()) == len(crashes)
    return len(crashes)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(3))
def test_receipts_match_paddleocr(seed, dtype):
    # float32 as DetLabelEncode gives the polygons, float64 as EastRandomCropData and IaaAugment do.
    polys = np.array(receipt_polygons(np.random.default_rng(seed), words=164), dtype=dtype)
    tags = np.random.default_rng(seed).random(len(polys)) < 0.05
    assert check(sample((640, 640), polys, tags)) == 0


def test_receipt_after_a_crop_matches_paddleocr():
    # As EastRandomCropData leaves it: float64 polygons, some beyond the border, tags a list.
    polys = np.array(receipt_polygons(np.random.default_rng(5), words=164)) * 1.6 - 150
    assert check(sample((640, 640), polys, [False] * len(polys))) > 0


def test_crash_cases_are_skipped_and_counted():
    inside = [[10, 10], [50, 10], [50, 30], [10, 30]]
    empty_offset = [[0.2, 0.2], [0.9, 0.2], [0.9, 0.9], [0.2, 0.9]]  # area > 0, all points truncate to (0, 0)
    left = [[-90, 10], [-40, 10], [-40, 30], [-90, 30]]
    far_right = [[300, 10], [340, 10], [340, 30], [300, 30]]
    polys = np.array([inside, empty_offset, left, far_right], dtype=np.float32)
    data = sample((64, 64), polys, np.zeros(4, bool))
    assert crashing_words(data) == [1, 2, 3]
    got, border = ours(data)
    assert border.skipped == {"empty offset": 1, "outside the image": 2}
    assert_same(theirs(data, [1, 2, 3]), got)
    alone, _ = ours(sample((64, 64), polys[:1].copy(), np.zeros(1, bool)))
    np.testing.assert_array_equal(got["threshold_map"], alone["threshold_map"])


def test_a_word_just_beyond_the_right_edge_writes_paddleocrs_stray_column():
    # The box starts one pixel or more past the edge, within its own width: PaddleOCR's slice
    # with a negative start selects one column of the box and writes it to the last column.
    polys = np.array([[[70, 10], [100, 10], [100, 30], [70, 30]]], dtype=np.float32)
    data = sample((64, 64), polys, np.zeros(1, bool))
    got, border = ours(data)
    assert not border.skipped and got["threshold_map"][:, 63].max() > np.float32(0.3)
    assert_same(theirs(data), got)


def test_parameters_and_schedule_match_paddleocr():
    polys = np.array(receipt_polygons(np.random.default_rng(9), words=40), dtype=np.float32)
    data = sample((640, 640), polys, np.zeros(len(polys), bool))
    for params in [
        {"shrink_ratio": 0.3, "thresh_min": 0.2, "thresh_max": 0.9},
        {"shrink_ratio": 0.4, "epoch": 3, "total_epoch": 10},
        {"min_text_size": 12},
    ]:
        crashes = crashing_words(data, paddle.MakeBorderMap(**params).shrink_ratio)
        got, _ = ours(data, **params)
        assert_same(theirs(data, crashes, **params), got)


def test_list_polygons_of_several_lengths_match_paddleocr():
    polys = [
        np.array([[10, 10], [50, 12], [48, 30], [11, 28]], np.float64),
        np.array([[5, 40], [60, 40], [60, 55], [30, 62], [5, 55]], np.float64),
    ]
    data = sample((70, 70), polys, [False, False])
    got, _ = ours(data)
    assert_same(theirs(data), got)


def test_a_word_of_two_points_is_skipped_and_counted():
    # shapely refuses a ring of fewer than 4 coordinates: PaddleOCR's border op raises.
    polys = [np.array([[10, 10], [50, 12], [48, 30], [11, 28]], np.float32), np.array([[5, 40], [60, 40]], np.float32)]
    data = sample((70, 70), polys, [False, False])
    assert crashing_words(data) == [1]
    got, border = ours(data)
    assert border.skipped == {"fewer than 3 points": 1}
    assert_same(theirs(data, [1]), got)


def test_non_finite_coordinates_are_refused():
    polys = np.array([[[1, 1], [np.nan, 2], [3, 9]]], dtype=np.float32)
    with pytest.raises(ValueError, match="polygon 0: non-finite"):
        paddle.MakeBorderMap()(sample((16, 16), polys, [False]))


coordinate = st.one_of(st.integers(-40, 160), st.floats(-40, 160, allow_nan=False, width=32))


@st.composite
def scenes(draw):
    """Random and adversarial words: repeated points, zero area, self-crossing, tiny, partly or
    wholly outside the image (beyond every edge), in both of the pipeline's dtypes."""
    shape = (draw(st.integers(1, 120)), draw(st.integers(1, 120)))
    points = draw(st.integers(3, 7))
    words = draw(st.lists(st.lists(st.tuples(coordinate, coordinate), min_size=points, max_size=points), max_size=8))
    if words and draw(st.booleans()):  # a word with a repeated point, or repeated whole
        source = draw(st.sampled_from(words))
        words.append(source[:1] + source[:-1])
    if draw(st.booleans()):  # a tiny word
        x, y = draw(coordinate), draw(coordinate)
        size = draw(st.floats(0.1, 3))
        words.append([(x, y), (x + size, y), (x + size, y + size), (x, y + size)][:points] + [(x, y)] * (points - 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    polys = np.array(words, dtype=dtype).reshape(len(words), points, 2)
    tags = np.array(draw(st.lists(st.booleans(), min_size=len(words), max_size=len(words))), dtype=bool)
    return shape, polys, tags


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_random_scenes_match_paddleocr(scene):
    shape, polys, tags = scene
    check(sample(shape, polys, tags))


def test_the_registry_names_the_replacements():
    assert stack("paddleocr").load() == (paddle.MakeBorderMap, paddle.MakeShrinkMap)
    assert stack("baseline").load() == (compute_targets,)
    with pytest.raises(ValueError, match="unknown training stack 'mmocr': one of baseline, paddleocr, doctr"):
        stack("mmocr")
