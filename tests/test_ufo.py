import json
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocr_targets.ufo import AnnotationError, parse_entry, read_ufo
from tests.helpers import examples


def test_points_are_rounded_and_ignore_flags_read():
    entry = {
        "words": {
            "1": {"points": [[0.5, 1.5], [10.49, 1.51], [10, 8], [0, 8]], "transcription": "TOTAL"},
            "2": {"points": [[1, 1], [2, 1], [2, 2]], "transcription": "###"},
            "3": {"points": [[1, 1], [2, 1], [2, 2], [1, 2]], "illegibility": True},
            "4": {"points": []},
        }
    }
    annotation = parse_entry("a.jpg", entry)
    assert [p.shape for p in annotation.polygons] == [(4, 2), (3, 2), (4, 2)]  # the empty word is dropped
    np.testing.assert_array_equal(annotation.polygons[0], [[0, 2], [10, 2], [10, 8], [0, 8]])  # half to even
    assert annotation.polygons[0].dtype == np.int32
    assert annotation.ignore == [False, True, True]
    assert parse_entry("b.jpg", {}).polygons == []


def test_an_annotation_survives_pickling_to_a_worker():
    words = {str(i): {"points": [[i, 1], [i + 5, 1], [i + 5, 9]] + [[i, 9]] * (i % 2)} for i in range(5)}
    words["5"] = {"points": [[1, 1]] * 3, "transcription": "###"}
    for original in (parse_entry("a.jpg", {"words": words}), parse_entry("b.jpg", {})):
        back = pickle.loads(pickle.dumps(original))
        assert (back.name, back.ignore) == (original.name, original.ignore)
        assert [(p.dtype, p.tolist()) for p in back.polygons] == [(p.dtype, p.tolist()) for p in original.polygons]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ({"7": {"text": "x"}}, 'word 7 has no "points" list'),
        ({"7": {"points": [["a", 1], [2, 3], [4, 5]]}}, r"word 7 points are not \[\[x, y\], ...\] numbers"),
        ({"7": {"points": [["1", "2"], ["2", "3"], ["4", "5"]]}}, "word 7 points are not"),
        ({"7": {"points": [[1, None], [2, 3], [4, 5]]}}, "word 7 points are not"),
        ({"7": {"points": [[2**70, 1], [2, 3], [4, 5]]}}, "word 7 points are not"),
        ({"7": {"points": [[1, 2, 3], [2, 3, 4]]}}, r"word 7 points must be \[\[x, y\], ...\]"),
        ({"7": {"points": [[1, 2], [float("inf"), 3], [4, 5]]}}, "word 7 has non-finite coordinates"),
        ({"7": {"points": [[1, 2], [1e30, 3], [4, 5]]}}, "word 7 has coordinates beyond"),
        ([1, 2], '"words" is not an object'),
    ],
)
def test_malformed_words_name_the_image_and_word(words, message):
    """A bad word is told in the detail of one problem, which groups such images in the summary."""
    within = "" if message.startswith('"words"') else r"words that cannot be used \("
    with pytest.raises(AnnotationError, match=f"img.jpg: {within}{message}"):
        parse_entry("img.jpg", {"words": words})


def test_read_ufo_keeps_file_order(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"images": {"z.jpg": {}, "a.jpg": {}, "m.jpg": {}}}')
    assert list(read_ufo(path)) == ["z.jpg", "a.jpg", "m.jpg"]
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(AnnotationError, match="not UTF-8"):
        read_ufo(path)


scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=3)
)
anything = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=25,
)
points = st.one_of(st.lists(st.lists(scalar, max_size=3) | anything, max_size=6), anything)
word = st.fixed_dictionaries({"points": points}, optional={"transcription": anything, "illegibility": anything})
entry = st.fixed_dictionaries({}, optional={"words": st.dictionaries(st.text(max_size=3), word | anything, max_size=4)})
document = st.one_of(
    st.fixed_dictionaries({"images": st.dictionaries(st.text(max_size=5), entry | anything, max_size=4) | anything}),
    anything,
)


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(document.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64)))
def test_malformed_ufo_files_raise_only_annotation_errors_that_say_what(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ann.json"
        path.write_bytes(content)
        try:
            for name, raw in read_ufo(path).items():
                annotation = parse_entry(name, raw)
                assert all(p.dtype == np.int32 and p.ndim == 2 and p.shape[1] == 2 for p in annotation.polygons)
                assert len(annotation.ignore) == len(annotation.polygons)
        except AnnotationError as error:
            assert str(error) and len(str(error)) < 2000


def test_words_of_another_shape_say_the_shape_expected():
    with pytest.raises(AnnotationError) as error:
        parse_entry("img.jpg", {"words": [{"points": [[1, 2], [3, 4], [5, 6]]}]})
    assert str(error.value) == 'img.jpg: "words" is not an object (a list; expected {id: {"points": [[x, y], ...]}})'
