"""The docTR stack against docTR 1.1's own ``_DBNet.build_target``, imported from the released
package: the four targets bit for bit, for relative boxes and polygons."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.synthetic import receipt_polygons
from ocr_targets.stacks import doctr, stack
from ocr_targets.stacks.released import doctr_dbnet
from tests.helpers import examples


def theirs(target, shape, **attributes):
    """docTR's own ``build_target`` and how many words its ``draw_thresh_map`` raised for: each
    such word's border skipped (the call returns what it was given), as ours does."""
    model = doctr_dbnet()()
    vars(model).update(attributes)
    draw, crashes = model.draw_thresh_map, []

    def guarded(polygon, canvas, mask):
        try:
            return draw(polygon, canvas, mask)
        except ValueError:  # the broadcast error of a box outside the map: nothing was drawn
            crashes.append(polygon)
            return polygon, canvas, mask

    model.draw_thresh_map = guarded
    with np.errstate(all="ignore"):
        return model.build_target(target, shape), len(crashes)


def ours(target, shape, **attributes):
    model = doctr_dbnet()()
    vars(model).update(attributes)
    doctr.install(model)
    return model.build_target(target, shape), sum(model.skipped_words.values())


def check(target, shape, **attributes) -> tuple:
    """Compare on one batch; return docTR's targets and how many words its border code raised for."""
    (expected, crashes), (got, skipped) = theirs(target, shape, **attributes), ours(target, shape, **attributes)
    assert_same(expected, got)
    assert skipped == crashes
    return expected, crashes


def assert_same(expected, got) -> None:
    for name, mine, their in zip(
        ("seg_target", "seg_mask", "thresh_target", "thresh_mask"), got, expected, strict=True
    ):
        assert mine.dtype == their.dtype and mine.shape == their.shape, name
        assert np.array_equal(mine, their), f"{name}: {np.sum(mine != their)} differ"


def relative_words(seed: int, boxes: bool) -> np.ndarray:
    polygons = np.array(receipt_polygons(np.random.default_rng(seed), words=164)) / 640
    polygons = np.clip(polygons, 0, 1).astype(np.float32)
    if boxes:
        return np.concatenate((polygons.min(axis=1), polygons.max(axis=1)), axis=1)
    return polygons


@pytest.mark.parametrize("boxes", [True, False], ids=["boxes", "polygons"])
@pytest.mark.parametrize("size", [(640, 640), (512, 384)])
def test_receipts_match_doctr(size, boxes):
    target = [{"words": relative_words(seed, boxes)} for seed in range(2)]
    tiny = np.array([[0.5, 0.95], [0.502, 0.95], [0.502, 0.953], [0.5, 0.953]], np.float32)  # under 3 pixels
    target[0]["words"] = np.concatenate([target[0]["words"], tiny[[0, 2]].reshape(1, 4) if boxes else tiny[None]])
    expected, crashes = check(target, (1, *size))
    assert crashes == 0
    assert expected[0].any() and not expected[1].all() and expected[3].any()  # words drawn, some masked


def test_install_replaces_the_bound_method_and_reads_the_model():
    model = doctr_dbnet()()
    doctr.install(model)
    assert model.build_target.__func__ is doctr.build_target and model.build_target.__self__ is model
    target = [{"words": relative_words(3, boxes=False)[:30]}]
    params = {"shrink_ratio": 0.3, "thresh_min": 0.2, "thresh_max": 0.9, "min_size_box": 6}
    check(target, (1, 640, 640), **params)


def test_empty_pages_and_classes_match_doctr():
    target = [
        {"words": np.zeros((0, 4), np.float32), "artefacts": np.array([[0.1, 0.1, 0.5, 0.4]], np.float32)},
        {"words": np.zeros((0, 4, 2), np.float32), "artefacts": np.zeros((0, 4), np.float32)},
    ]
    check(target, (2, 48, 64))
    check([], (1, 8, 8))


def test_a_word_docTR_raises_for_is_skipped_and_counted():
    # Self-crossing, along the bottom edge: its first dilated path lies below the map, where
    # docTR's draw_thresh_map raises a broadcast ValueError.
    word = np.array([[[0, 0], [0.5, 1], [1, 1], [0.5, 0.875], [0, 0.375]]], np.float32)
    with pytest.raises(ValueError, match="could not broadcast"), np.errstate(all="ignore"):
        doctr_dbnet()().build_target([{"words": word}], (1, 49, 88))
    _, crashes = check([{"words": word}], (1, 49, 88))
    assert crashes == 1


def test_invalid_targets_are_refused_as_doctr_refuses_them():
    with pytest.raises(AssertionError, match="np.float32"):
        ours([{"words": np.zeros((1, 4), np.float64)}], (1, 8, 8))
    with pytest.raises(ValueError, match="between 0 & 1"):
        ours([{"words": np.array([[0.1, 0.1, 1.5, 0.5]], np.float32)}], (1, 8, 8))


unit = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1, width=32))


@st.composite
def targets(draw):
    """Pages of relative boxes or polygons: tiny, zero-area, crossing, repeated, at the edges."""
    classes = draw(st.integers(1, 2))
    shape = (classes, draw(st.integers(1, 96)), draw(st.integers(1, 96)))
    pages = []
    for _ in range(draw(st.integers(1, 2))):
        page = {}
        for label in range(classes):
            count = draw(st.integers(0, 6))
            if draw(st.booleans()):
                points = draw(st.integers(3, 6))
                words = draw(
                    st.lists(
                        st.lists(st.tuples(unit, unit), min_size=points, max_size=points),
                        min_size=count,
                        max_size=count,
                    )
                )
                if words and draw(st.booleans()):  # a word with a repeated point
                    words.append(words[0][:1] + words[0][:-1])
                array = np.array(words, dtype=np.float32).reshape(-1, points, 2)
            else:
                words = draw(st.lists(st.tuples(unit, unit, unit, unit), min_size=count, max_size=count))
                if draw(st.booleans()):  # corners in order, so that most boxes are drawn
                    words = [(min(a, c), min(b, d), max(a, c), max(b, d)) for a, b, c, d in words]
                array = np.array(words, dtype=np.float32).reshape(-1, 4)
            page[f"class {label}"] = array
        pages.append(page)
    return pages, shape


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(targets())
def test_random_targets_match_doctr(case):
    target, shape = case
    check(target, shape)


def test_the_registry_names_the_replacement():
    assert stack("doctr").load() == (doctr.build_target,)
