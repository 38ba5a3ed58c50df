"""A store of docTR 1.1's validation targets, against docTR's released code: its ``build_target``
(imported) on the pages its validation pipeline makes, that pipeline stated below from docTR's
source (its ``Resize`` subclasses torchvision's, which the test environment does not install)."""

import hashlib
import json
import math
import pickle
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from ocr_targets.hashing import content_hash
from ocr_targets.location import Location
from ocr_targets.stacks import STORED, doctr
from ocr_targets.stacks.doctr_geometry import SymmetricResize, relative_boxes
from ocr_targets.stacks.doctr_pipeline import DoctrPipeline, page
from ocr_targets.stacks.released import doctr_dbnet
from ocr_targets.store import OtherStack, StoreSettings, open_store
from ocr_targets.ufo import AnnotationError, ImageAnnotation, read_annotations, read_ufo
from precompute.cli import main
from precompute.info import info
from precompute.verify import verify
from tests.conftest import DATA
from tests.helpers import examples

SIZE = 640
DOCTR = {"shrink_ratio": 0.4, "thresh_min": 0.3, "thresh_max": 0.7, "min_size_box": 3}  # _DBNet's class attributes


def convert_to_relative_coords(geoms, img_shape):
    doctr_dbnet()  # docTR's package stood in for, so that doctr.utils imports without torchvision
    from doctr.utils.geometry import convert_to_relative_coords

    return convert_to_relative_coords(geoms, img_shape)


def doctr_resize_target(boxes: np.ndarray, height: int, width: int, size: int) -> np.ndarray:
    """``Resize((size, size), preserve_aspect_ratio=True, symmetric_pad=True).forward`` on a (3,
    height, width) image and its relative (N, 4) float32 boxes: doctr/transforms/modules/pytorch.py,
    ``forward`` (lines 111-114, 141-144, 157-165, 182-184) and ``_resize_target`` (lines 74-79, 95)."""
    target_ratio = size / size
    actual_ratio = height / width
    if target_ratio == actual_ratio:
        return boxes  # torchvision's plain resize; the target is passed on untouched
    if actual_ratio > target_ratio:
        tmp_size = (size, max(int(size / actual_ratio), 1))
    else:
        tmp_size = (max(int(size * actual_ratio), 1), size)
    raw_shape = tmp_size  # F.resize gives the image exactly tmp_size
    _pad = (0, size - raw_shape[1], 0, size - raw_shape[0])
    half_pad = (math.ceil(_pad[1] / 2), math.ceil(_pad[3] / 2))
    offset = (half_pad[0] / size, half_pad[1] / size)
    target = boxes.copy()
    target[:, [0, 2]] = offset[0] + target[:, [0, 2]] * raw_shape[-1] / size
    target[:, [1, 3]] = offset[1] + target[:, [1, 3]] * raw_shape[-2] / size
    return np.clip(target, 0, 1)


def doctr_page(path, label: dict, size: int) -> dict[str, np.ndarray]:
    """The target docTR's validation loader hands the loss for one image of a label file."""
    with Image.open(path) as image:  # read_img_as_tensor: doctr/io/image/pytorch.py line 52
        width, height = ImageOps.exif_transpose(image).convert("RGB").size
    # DetectionDataset.format_polygons, doctr/datasets/detection.py lines 84, 88, 91
    words = label["polygons"]
    polygons = np.asarray(words if isinstance(words, list) else words["words"], dtype=np.float32)
    geoms = np.concatenate((polygons.min(axis=1), polygons.max(axis=1)), axis=1)
    # pre_transform_multiclass, doctr/datasets/utils.py line 231: docTR's own function
    boxes = convert_to_relative_coords(np.asarray(geoms, dtype=np.float32), (height, width))
    return {"words": doctr_resize_target(boxes, height, width, size)}


def theirs(pages, shape):
    model = doctr_dbnet()()
    vars(model).update(DOCTR)
    with np.errstate(all="ignore"):
        return model.build_target(pages, shape)


def assert_same(got, expected) -> None:
    for name, mine, their in zip(
        ("seg_target", "seg_mask", "thresh_target", "thresh_mask"), got, expected, strict=True
    ):
        assert mine.dtype == their.dtype and mine.shape == their.shape, name
        assert np.array_equal(mine, their), f"{name}: {np.sum(mine != their)} differ"


def labels_from_ufo(folder) -> dict:
    """docTR labels of the bundled sample (points moved by fractions, so that they are floats) and
    of two more images made of its first: stored on its side with EXIF orientation 6 (docTR reads
    it upright), and turned to portrait (docTR pads it left and right)."""
    images = folder / "images"
    shutil.copytree(DATA / "images", images)
    ufo = read_ufo(DATA / "annotations.json")
    labels = {}
    for k, (name, entry) in enumerate(ufo.items()):
        polygons = [[[x + 0.25 * (k % 4), y + 0.375] for x, y in word["points"]] for word in entry["words"].values()]
        labels[name] = {"img_dimensions": [entry["img_w"], entry["img_h"]], "img_hash": "", "polygons": polygons}
    first = next(iter(ufo))
    with Image.open(images / first) as image:
        exif = image.getexif()
        exif[0x0112] = 6
        image.save(images / "on_its_side.jpg", exif=exif)
        image.transpose(Image.Transpose.TRANSPOSE).save(images / "portrait.jpg")
    words = labels[first]["polygons"]
    labels["on_its_side.jpg"] = {"polygons": words}
    labels["portrait.jpg"] = {"polygons": {"words": [[[y, x] for x, y in word] for word in words]}}
    path = folder / "labels.json"
    path.write_text(json.dumps(labels))
    return labels


@pytest.fixture(scope="session")
def doctr_store(tmp_path_factory):
    """The sample's docTR labels and their store, made as a user would: (folder, labels, store path)."""
    folder = tmp_path_factory.mktemp("doctr")
    labels = labels_from_ufo(folder)
    out = folder / "targets.zarr"
    images, annotations = str(folder / "images"), str(folder / "labels.json")
    assert main(["precompute", "--images", images, "--annotations", annotations, "--out", str(out),
                 "--stack", "doctr", "--size", str(SIZE), "--block", "4", "--quiet"]) == 0  # fmt: skip
    return folder, labels, out


def test_the_stored_maps_are_doctrs_build_target_on_doctrs_validation_pages(doctr_store):
    folder, labels, out = doctr_store
    store = open_store(out)
    assert "doctr" in STORED and store.settings.stack == "doctr" and store.filenames == list(labels)
    pages = [doctr_page(folder / "images" / name, label, SIZE) for name, label in labels.items()]
    expected = theirs(pages, (1, SIZE, SIZE))
    for index, name in enumerate(store.filenames):
        stored = page(store.words(index)[0])
        assert stored.keys() == pages[index].keys()
        assert stored["words"].tobytes() == pages[index]["words"].tobytes(), name  # the boxes docTR's loss gets
        entry = store[index]
        got = (entry.prob_map, entry.prob_mask.astype(bool), entry.thresh_map, entry.thresh_mask.astype(bool))
        assert_same([array[None, None] for array in got], [array[index : index + 1] for array in expected])
    assert expected[0].any() and expected[3].any()  # words drawn
    assert store["on_its_side.jpg"].original_size == (1280, 720)  # read upright, as docTR reads it


def test_verify_passes_on_a_doctr_store_and_info_names_its_geometry(doctr_store):
    folder, labels, out = doctr_store
    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 0
    report = verify(out, jobs=1, progress=False)
    assert report.ok and len(report.checks) == len(labels)
    assert all(check.differences[name] == 0.0 for check in report.checks for name in check.differences)
    described = info(Location.of(out))
    assert "stack        doctr (its validation transform and targets)" in described
    assert any(
        "docTR's Resize((size, size), preserve_aspect_ratio=True, symmetric_pad=True)" in line for line in described
    )


def test_install_with_a_store_reads_its_pages_and_computes_the_others(doctr_store):
    folder, labels, out = doctr_store
    pages = [doctr_page(folder / "images" / name, label, SIZE) for name, label in labels.items()]
    nudged = {"words": np.nextafter(pages[0]["words"], np.float32(1))}  # one ulp off: another page
    batch = [pages[3], nudged, pages[11], pages[12], {"words": np.zeros((0, 4), np.float32)}]
    model = SimpleNamespace(**DOCTR)  # a stand-in for a docTR DBNet: its four attributes
    doctr.install(model, out)
    assert_same(model.build_target(batch, (1, SIZE, SIZE)), theirs(batch, (1, SIZE, SIZE)))
    assert model.stored_pages == {"hit": 3, "miss": 2}
    assert_same(model.build_target(pages[:2], (1, 320, 320)), theirs(pages[:2], (1, 320, 320)))  # another size
    assert model.stored_pages == {"hit": 3, "miss": 4}
    with pytest.raises(ValueError, match="between 0 & 1"):  # docTR's checks still apply to the pages computed
        model.build_target([pages[0], {"words": np.array([[0.1, 0.1, 1.5, 0.5]], np.float32)}], (1, SIZE, SIZE))


def test_install_refuses_a_store_of_other_parameters(doctr_store):
    model = SimpleNamespace(**{**DOCTR, "min_size_box": 4})
    with pytest.raises(ValueError, match="'min_size_box': 3}, and the model has .*'min_size_box': 4}"):
        doctr.install(model, doctr_store[2])


def test_other_stack_names_both_stacks_and_survives_pickling(made_store):
    _, _, baseline = made_store
    with pytest.raises(OtherStack) as raised:
        doctr.install(SimpleNamespace(**DOCTR), baseline)
    error = raised.value
    assert (error.stack, error.wanted, error.reader) == ("baseline", "doctr", "ocr_targets.stacks.doctr.install")
    assert "made for the baseline stack" in str(error) and "serves the doctr stack's" in str(error)
    assert "ocr-targets precompute --stack doctr" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is OtherStack and str(copy) == str(error) and copy.stack == "baseline"


def test_a_doctr_store_is_refused_by_the_baseline_readers(doctr_store):
    from ocr_targets.collate import StoreCollate

    with pytest.raises(OtherStack, match="made for the doctr stack .* StoreCollate serves the baseline"):
        StoreCollate(doctr_store[2])


sides = st.integers(1, 3000)


@settings(max_examples=examples(500), deadline=None)
@given(
    sides, sides, st.sampled_from([32, 640, 1023, 1024]), st.lists(st.floats(0, 1, width=32), min_size=4, max_size=4)
)
@example(348, 348, 640, [0.1, 0.3, 0.7, 0.9])  # square: boxes left as they are
@example(1281, 720, 1023, [0.1, 0.3, 0.7, 0.9])  # an odd pad
def test_the_resize_of_boxes_is_doctrs(height, width, size, box):
    relative = np.array([box], np.float32)
    assert SymmetricResize((height, width), size).boxes(relative).tobytes() == (
        doctr_resize_target(relative, height, width, size).tobytes()
    )


def test_relative_boxes_are_doctrs_for_integer_and_float_words():
    words = [
        np.array([[3, 5], [40, 2], [41, 30], [2, 33]], np.int32),
        np.array([[-2, 7], [900, 7], [900, 9]], np.int32),
    ]
    floats = [np.array([[3.3, 5.1], [40.7, 2.2], [41.1, 30.9], [2.5, 33.3]], np.float32)]
    for polygons in (words, floats):
        geoms = np.array([np.concatenate((p.min(axis=0), p.max(axis=0))) for p in polygons], np.float32)
        assert relative_boxes(polygons, (480, 640)).tobytes() == convert_to_relative_coords(geoms, (480, 640)).tobytes()
    assert relative_boxes([], (480, 640)).shape == (0, 4)


def test_the_geometry_maps_pixels_as_the_boxes_move():
    resize = SymmetricResize((720, 1280), 640)
    assert resize.resized_size == (360, 640) and resize.offset == (0, 140)
    np.testing.assert_allclose(resize.matrix @ [1280, 720, 1], [640, 500, 1])
    np.testing.assert_allclose(resize.inverse_matrix @ resize.matrix, np.eye(3), atol=1e-12)
    assert resize.image(np.full((720, 1280, 3), 200, np.uint8))[140:500].min() == 200


def test_a_label_file_is_told_from_ufo_by_its_shape(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"a.jpg": {"polygons": [[[1.5, 2], [3, 2], [3, 4.25]]]}, "b.jpg": {"polygons": []}}))
    a, b = read_annotations(path)
    assert a.polygons[0].dtype == np.float32 and a.polygons[0].tolist() == [[1.5, 2], [3, 2], [3, 4.25]]
    assert a.ignore == [False] and b.polygons == []
    sent = pickle.loads(pickle.dumps(a))  # as the job sends it to its workers
    assert sent.polygons[0].dtype == np.float32 and np.array_equal(sent.polygons[0], a.polygons[0])
    path.write_text(json.dumps({"a.jpg": {"boxes": []}}))
    with pytest.raises(AnnotationError, match=r"expected a UFO object .* or docTR labels"):
        read_annotations(path)
    path.write_text(json.dumps({"a.jpg": {"polygons": {"words": [], "stamps": [[[1, 2], [3, 4]]]}}}))
    with pytest.raises(AnnotationError, match=r"a.jpg: polygons of classes \['stamps'\]: a store holds docTR's one"):
        read_annotations(path)
    path.write_text(json.dumps({"a.jpg": {"polygons": [[[1, 2], [3, 4]], [[1, 2]]]}}))
    with pytest.raises(AnnotationError, match="as many points each"):
        read_annotations(path)


def test_float_words_hash_apart_and_integer_words_hash_as_before():
    def hashed(polygons):
        return content_hash(b"image", ImageAnnotation("a.jpg", polygons, [False] * len(polygons)), "settings")

    near = [np.array([[1.5, 2.0], [3.0, 2.0], [3.0, 4.25]], np.float32)]
    nearer = [np.nextafter(near[0], np.float32(9))]
    assert hashed(near) != hashed(nearer)
    whole = [np.array([[1, 2], [3, 2], [3, 4]], np.int32)]
    before = hashlib.sha256(
        b"settings" + b"image" + b"W" + (3).to_bytes(4, "little") + whole[0].astype("<i4").tobytes()
    )
    assert hashed(whole) == before.hexdigest()
    assert hashed(whole) != hashed([whole[0].astype(np.float32)])


def test_the_pipeline_reads_ufo_words_too():
    annotation = read_annotations(DATA / "annotations.json")[0]
    pipeline = DoctrPipeline()
    sample = pipeline.sample(DATA / "images", annotation, SIZE, "center", pixels=False)
    assert len(sample.polygons) == len(annotation.polygons) and sample.letterbox.size == SIZE
    targets = pipeline.targets(sample, StoreSettings().config)
    got = (targets.prob_map, targets.prob_mask.astype(bool), targets.thresh_map, targets.thresh_mask.astype(bool))
    assert_same([array[None, None] for array in got], theirs([page(sample.polygons)], (1, SIZE, SIZE)))
