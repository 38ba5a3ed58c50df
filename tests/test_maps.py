import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.synthetic import receipt_polygons
from ocr_targets import TargetConfig, compute_targets, reference_targets
from tests.helpers import assert_same_targets, examples
from tests.oracle import oracle_maps

CONFIG = TargetConfig()
BOX = [[10, 10], [50, 10], [50, 30], [10, 30]]  # area 800, perimeter 120: D = 800 * 0.84 / 120 = 5.6


def thresh_value(distance: float) -> float:
    return CONFIG.thresh_min + (CONFIG.thresh_max - CONFIG.thresh_min) * (1 - min(distance / 5.6, 1.0))


@pytest.mark.parametrize("make", [compute_targets, reference_targets])
def test_single_box_by_hand(make):
    t = make((64, 64), [BOX])
    # Shrunk by D = 5.6 and rounded by Clipper: x 15.6..44.4 -> 16..44, y 15.6..24.4 -> 16..24.
    ys, xs = np.nonzero(t.prob_map)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (16, 44, 16, 24)
    assert t.prob_map.sum() == 29 * 9
    np.testing.assert_array_equal(t.shrunk_polygons[0].min(axis=0), [16, 16])
    assert t.thresh_map[10, 30] == pytest.approx(0.7)  # on the top edge
    assert t.thresh_map[13, 30] == pytest.approx(thresh_value(3), abs=1e-6)  # 3 px inside
    assert t.thresh_map[7, 30] == pytest.approx(thresh_value(3), abs=1e-6)  # 3 px outside
    assert t.thresh_map[7, 7] == pytest.approx(thresh_value(np.hypot(3, 3)), abs=1e-6)  # off the corner
    assert t.thresh_map[20, 30] == pytest.approx(0.3)  # the middle, 10 px from any edge
    assert t.thresh_map[60, 60] == pytest.approx(0.3)  # far away
    assert t.thresh_mask[7, 30] == 1 and t.thresh_mask[60, 60] == 0
    assert t.prob_mask.all()


@pytest.mark.parametrize("make", [compute_targets, reference_targets])
def test_output_types(make):
    t = make((48, 80), [BOX, np.array([BOX]) + 3.7, [[1, 1]]])
    for name in ("prob_map", "thresh_map"):
        assert getattr(t, name).dtype == np.float32 and getattr(t, name).shape == (48, 80)
    for name in ("prob_mask", "thresh_mask"):
        assert getattr(t, name).dtype == np.uint8 and getattr(t, name).shape == (48, 80)
    assert len(t.shrunk_polygons) == 2
    assert all(p.dtype == np.int32 and p.ndim == 2 and p.shape[1] == 2 for p in t.shrunk_polygons)
    assert set(np.unique(t.prob_map)) <= {0.0, 1.0}
    assert t.thresh_map.min() >= 0.3 - 1e-7 and t.thresh_map.max() <= 0.7 + 1e-7


def test_ignored_words_are_masked_but_keep_their_maps():
    plain = compute_targets((64, 64), [BOX])
    ignored = compute_targets((64, 64), [BOX], ignore=[True])
    np.testing.assert_array_equal(plain.prob_map, ignored.prob_map)
    np.testing.assert_array_equal(plain.thresh_map, ignored.thresh_map)
    assert ignored.prob_mask[20, 30] == 0 and ignored.prob_mask[60, 60] == 1
    assert not ignored.thresh_mask.any()


def test_word_too_small_to_shrink_is_masked():
    t = compute_targets((16, 16), [[[2, 2], [5, 2], [5, 4], [2, 4]]])  # D = 0.84: Clipper returns nothing
    assert not t.shrunk_polygons and not t.prob_map.any()
    assert t.prob_mask[2, 2] == 0


def test_inputs_of_every_form_agree():
    forms = [BOX, np.array(BOX), np.array([BOX]), np.array(BOX, dtype=np.float32) + 0.9, [BOX]]
    maps = [compute_targets((64, 64), [form]).thresh_map for form in forms]
    for other in maps[1:]:
        np.testing.assert_array_equal(maps[0], other)  # floats are truncated: +0.9 changes nothing


@pytest.mark.parametrize("make", [compute_targets, reference_targets])
@pytest.mark.parametrize(
    "polygon",
    [
        [[5, 5], [5, 5], [5, 5]],  # a point
        [[0, 0], [20, 0]],  # two points: no area
        [[0, 0], [10, 10], [20, 20]],  # collinear
        [[0, 0], [20, 20], [20, 0], [0, 20]],  # self-intersecting bow tie
        [[-30, -30], [-10, -30], [-10, -10], [-30, -10]],  # wholly outside
        [[-10, 5], [30, 5], [30, 25], [-10, 25]],  # partly outside
        [[50, 50], [200, 50], [200, 90], [50, 90]],  # beyond the bottom right
        [[10, 10], [30, 10], [30, 10], [30, 20], [10, 20]],  # a repeated vertex
        [],
    ],
)
def test_degenerate_polygons_do_not_crash(make, polygon):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = make((64, 64), [polygon])
    assert np.isfinite(t.thresh_map).all()
    assert t.thresh_map.min() >= 0.3 - 1e-7


@pytest.mark.parametrize("make", [compute_targets, reference_targets])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_coordinates_name_the_polygon(make, bad):
    with pytest.raises(ValueError, match="polygon 1: non-finite"):
        make((64, 64), [BOX, [[1, 1], [bad, 2], [3, 9]]])


def test_malformed_polygons_are_rejected():
    with pytest.raises(ValueError, match=r"polygon 0: expected shape"):
        compute_targets((64, 64), [[[1, 2, 3], [4, 5, 6], [7, 8, 9]]])
    with pytest.raises(ValueError, match="polygon 0: not a numeric"):
        compute_targets((64, 64), [[["a", "b"], ["c", "d"], ["e", "f"]]])
    with pytest.raises(ValueError, match="polygon 0: coordinates beyond"):
        compute_targets((64, 64), [[[0, 0], [1e12, 0], [0, 10]]])
    with pytest.raises(ValueError, match="2 ignore flags for 1 polygons"):
        compute_targets((64, 64), [BOX], ignore=[False, True])
    with pytest.raises(ValueError, match="shape must be"):
        compute_targets((0, 64), [BOX])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shrink_ratio": 0.0}, "shrink_ratio must lie in"),
        ({"shrink_ratio": 1.0}, "shrink_ratio must lie in"),
        ({"thresh_min": 0.7, "thresh_max": 0.3}, "thresh_min < thresh_max"),
        ({"thresh_min": 0.5, "thresh_max": 0.5}, "thresh_min < thresh_max"),
        ({"thresh_max": 1.5}, "thresh_max <= 1"),
        ({"shrink_ratio": float("nan")}, "finite number"),
        ({"thresh_min": "0.3"}, "finite number"),
    ],
)
def test_config_is_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TargetConfig(**kwargs)


def test_config_changes_the_maps():
    wide = compute_targets((64, 64), [BOX], TargetConfig(shrink_ratio=0.1, thresh_min=0.1, thresh_max=0.9))
    narrow = compute_targets((64, 64), [BOX])
    assert wide.prob_map.sum() < narrow.prob_map.sum()  # shrunk further
    assert wide.thresh_map.min() == pytest.approx(0.1) and wide.thresh_map.max() == pytest.approx(0.9)


@pytest.mark.parametrize("seed", range(4))
def test_receipts_match_bit_for_bit(seed):
    polygons = receipt_polygons(np.random.default_rng(seed))
    fast, reference = compute_targets((640, 640), polygons), reference_targets((640, 640), polygons)
    assert_same_targets(fast, reference)
    np.testing.assert_array_equal(fast.thresh_map, reference.thresh_map)


def test_reference_equals_the_oracle():
    polygons = receipt_polygons(np.random.default_rng(7))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # square roots of rounding below 0, on edges
        prob_map, thresh_map = oracle_maps((640, 640), polygons)
    reference = reference_targets((640, 640), polygons)
    np.testing.assert_array_equal(reference.prob_map, prob_map)
    np.testing.assert_array_equal(reference.thresh_map, thresh_map)


coordinate = st.one_of(st.integers(-40, 140), st.floats(-40, 140, allow_nan=False, width=32))
polygon = st.lists(st.tuples(coordinate, coordinate), min_size=0, max_size=9)


@st.composite
def scenes(draw):
    """Random and adversarial polygon sets: repeated, collinear, crossing, partly or wholly outside."""
    shape = (draw(st.integers(1, 120)), draw(st.integers(1, 120)))
    polygons = draw(st.lists(polygon, max_size=8))
    if polygons and draw(st.booleans()):  # repeat a vertex or a whole word
        source = draw(st.sampled_from(polygons))
        polygons.append(source + source[:1])
    as_array = draw(st.booleans())
    forms = [np.array(p, dtype=np.float64).reshape(1, -1, 2) if as_array and p else p for p in polygons]
    ignore = draw(st.lists(st.booleans(), min_size=len(forms), max_size=len(forms)))
    low = draw(st.floats(0.0, 0.9))
    config = draw(
        st.sampled_from([CONFIG, TargetConfig(draw(st.floats(0.05, 0.95)), low, draw(st.floats(low + 0.05, 1.0)))])
    )
    return shape, forms, ignore, config


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_fast_path_equals_reference(scene):
    shape, polygons, ignore, config = scene
    fast = compute_targets(shape, polygons, config, ignore=ignore)
    assert_same_targets(fast, reference_targets(shape, polygons, config, ignore=ignore))


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 99), st.integers(0, 79)), min_size=1, max_size=7), max_size=6))
def test_reference_equals_the_oracle_on_clamped_points(polygons):
    # Points inside the image, as the data path clamps them; dilated boxes may cross its border.
    polygons = [np.array(p, dtype=np.float32).reshape(1, -1, 2) for p in polygons]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # with the eps terms, no 0 divided by 0
        prob_map, thresh_map = oracle_maps((80, 100), polygons)
    reference = reference_targets((80, 100), polygons)
    np.testing.assert_array_equal(reference.prob_map, prob_map)
    np.testing.assert_array_equal(reference.thresh_map, thresh_map)


@pytest.mark.parametrize("make", [compute_targets, reference_targets])
def test_a_repeated_point_is_at_distance_zero(make):
    # Two eps terms in the baseline's distance: an edge of length 0 gives 0 at its own pixel, not NaN.
    word = [[10, 10], [30, 10], [30, 10], [30, 20], [10, 20]]
    thresh = make((40, 40), [word]).thresh_map
    assert np.isfinite(thresh).all() and thresh[10, 30] == thresh[10, 10] == thresh.max() > np.float32(0.69)


@pytest.mark.parametrize("make", [compute_targets, reference_targets])
@pytest.mark.parametrize(
    "word",
    [
        [[10, 10], [40, 10], [10, 30], [40, 30]],  # a quad in Z order: its two triangles cancel
        [[10, 10], [20, 20], [30, 30]],  # collinear
        [[10, 10], [30, 10]],  # two points
        [[12, 12]],  # one point
    ],
)
def test_words_without_area_add_nothing(make, word):
    targets = make((40, 50), [word, [[1, 1], [5, 1], [5, 5], [1, 5]]])
    alone = make((40, 50), [[[1, 1], [5, 1], [5, 5], [1, 5]]])
    np.testing.assert_array_equal(targets.prob_map, alone.prob_map)
    np.testing.assert_array_equal(targets.thresh_map, alone.thresh_map)
    assert len(targets.shrunk_polygons) == 1
    if len(word) >= 2:  # 3 array elements or more: masked out in the DB-style probability mask
        assert targets.prob_mask[word[0][1], word[0][0]] == 0


@pytest.mark.parametrize("make", [compute_targets, reference_targets])
def test_maps_are_drawn_into_the_arrays_given(make):
    polygons = receipt_polygons(np.random.default_rng(3))
    fresh = make((640, 640), polygons)
    out = {
        "prob_map": np.full((640, 640), 7, dtype=np.float32),  # stale values, as a reused batch tensor holds
        "thresh_map": np.full((640, 640), 7, dtype=np.float32),
        "thresh_mask": np.full((640, 640), 7, dtype=np.uint8),
    }
    drawn = make((640, 640), polygons, out=out)
    assert all(getattr(drawn, name) is array for name, array in out.items())
    assert_same_targets(drawn, fresh)
    with pytest.raises(
        ValueError, match=r"out\['prob_mask'\] must be a C-contiguous uint8 array of shape \(640, 640\)"
    ):
        make((640, 640), polygons, out={"prob_mask": np.zeros((640, 640), dtype=np.float32)})
