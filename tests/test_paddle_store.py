"""A store for the PaddleOCR stack against PaddleOCR 2.10's released code: its own ``DecodeImage``,
``DetLabelEncode``, ``Resize``, ``MakeBorderMap`` and ``MakeShrinkMap`` (imported from the wheel,
tests/test_stacks_paddle.py says how) run on the bundled images and a PaddleOCR label file made
from their UFO annotations, every map and mask compared bit for bit."""

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ocr_targets import TargetConfig
from ocr_targets.hashing import content_hash
from ocr_targets.stacks.paddle_config import PaddleConfigError, RandomOp, read_paddle_config
from ocr_targets.stacks.paddle_stored import StoredTargets
from ocr_targets.stacks.released import paddle_label_ops, paddle_ops
from ocr_targets.store import OtherStack, StoreSettings, open_store
from ocr_targets.ufo import AnnotationError, ImageAnnotation, parse_entry, read_annotations, read_ufo
from precompute import job, verify
from precompute.cli import main
from tests.conftest import DATA

SIZE = 640
PADDLE = StoreSettings(stack="paddleocr", pad="none", size=SIZE, block=4)


def write_labels(folder: Path) -> Path:
    """The bundled sample's words as a PaddleOCR label file: points moved off the integers (its
    labels are floats), illegible words ``###``, one word of five points (the others are padded
    to five, as DetLabelEncode pads them)."""
    lines = []
    for name, entry in json.loads((DATA / "annotations.json").read_text())["images"].items():
        words = [
            {
                "transcription": "###" if word.get("illegibility") else word.get("transcription") or "w",
                "points": [[x + 0.37, y - 0.21] for x, y in word["points"]],
            }
            for word in entry["words"].values()
            if word["points"]
        ]
        if name == "wildreceipt_2.jpeg":
            first = words[0]["points"]
            first.insert(1, [(first[0][0] + first[1][0]) / 2, first[0][1] - 0.5])
        lines.append(f"{name}\t{json.dumps(words)}")
    labels = folder / "labels.txt"
    labels.write_text("\n".join(lines) + "\n")
    return labels


def theirs(images: Path, name: str, label: str, size: int = SIZE, **params) -> dict:
    """PaddleOCR's det training transforms with Resize for the random ops, up to its target ops."""
    border, shrink = paddle_ops()
    with np.errstate(all="ignore"):
        return shrink(**params)(border(**params)(resized(images, name, label, size)))


@pytest.fixture(scope="module")
def paddle_store(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The bundled images, their PaddleOCR label file and a store made from them: (images, labels, store)."""
    folder = tmp_path_factory.mktemp("paddle")
    images = folder / "images"
    images.symlink_to(DATA / "images")
    labels = write_labels(folder)
    out = folder / "targets.zarr"
    summary = job.run(job.Job(images, labels, out, jobs=2, progress=False, settings=PADDLE))
    assert summary.computed == 12 and not summary.failures
    return images, labels, out


def test_the_store_equals_paddleocrs_own_transforms_and_ops(paddle_store):
    images, labels, out = paddle_store
    store = open_store(out)
    lines = read_ufo(labels)
    for index, name in enumerate(store.filenames):
        expected = theirs(images, name, lines[name].label)
        entry = store[index]
        pairs = {
            "prob_map": "shrink_map",
            "thresh_map": "threshold_map",
            "prob_mask": "shrink_mask",
            "thresh_mask": "threshold_mask",
        }
        for ours, their in pairs.items():
            np.testing.assert_array_equal(getattr(entry, ours), expected[their], err_msg=f"{name}: {ours}")
        height, width = expected["image"].shape[:2]
        assert (height, width) == (SIZE, SIZE)
        assert entry.ignore == [text in ("*", "###") for text in expected["texts"]]
        assert entry.words[0].dtype == np.float32


def test_verify_passes(paddle_store):
    _, _, out = paddle_store
    report = verify.verify(out, jobs=1, progress=False)
    assert report.ok, report.lines()
    assert len(report.checks) == 12


def test_resize_arithmetic_is_the_running_numpys():
    """Resize multiplies a float32 coordinate by a Python float: in float64 under numpy 1, in
    float32 under numpy 2. A point where the two round differently tells which one ran."""
    _, encode, resize = paddle_label_ops()
    from ocr_targets.stacks.paddle_pipeline import Stretch, label_polys

    rng = np.random.default_rng(0)
    points = (rng.random((200, 4, 2)) * 1000).astype(np.float32)
    label = json.dumps([{"transcription": "w", "points": word.tolist()} for word in points])
    for shape in [(720, 1280), (333, 517), (1200, 1600)]:
        data = resize(size=[640, 640])(encode()({"image": np.zeros((*shape, 3), np.uint8), "label": label}))
        mine = Stretch(shape, 640).points(label_polys(list(points)))
        assert mine.dtype == np.float32
        np.testing.assert_array_equal(mine, data["polys"])


def test_a_paddle_label_file_is_read_by_its_shape(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text(
        'a.jpg\t[{"transcription": "x", "points": [[1.5, 2], [9, 2.25], [9, 8]]}, '
        '{"transcription": "*", "points": [[0, 0], [4, 0], [4, 4], [0, 4]]}]\n'
        "\n"
        "sub/b.png\t[]\n"
        'c.jpg\t[{"points": [[1, 1], [2, 2], [3, 1]]}]\n'
    )
    entries = read_ufo(labels)
    assert list(entries) == ["a.jpg", "sub/b.png", "c.jpg"]
    first = parse_entry("a.jpg", entries["a.jpg"])
    assert [polygon.dtype for polygon in first.polygons] == [np.float32, np.float32]
    np.testing.assert_array_equal(first.polygons[0], np.array([[1.5, 2], [9, 2.25], [9, 8]], np.float32))
    assert first.ignore == [False, True]
    assert parse_entry("sub/b.png", entries["sub/b.png"]).polygons == []
    bad_word = r'line 4 \(c.jpg\): words that cannot be used \(word 0 has no "transcription"\)'
    with pytest.raises(AnnotationError, match=bad_word):
        parse_entry("c.jpg", entries["c.jpg"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.jpg\t[]\nb.jpg []\n", r"labels.txt: line 2 has no tab"),
        ("a.jpg\t[]\na.jpg\t[]\n", r"labels.txt: line 2: a.jpg is also on line 1"),
        ('["a.jpg", "b.jpg"]\t[]\n', r"line 1 names a list of images, of which PaddleOCR picks one at random"),
    ],
)
def test_a_bad_label_file_names_the_file_and_line(tmp_path, text, message):
    labels = tmp_path / "labels.txt"
    labels.write_text(text)
    with pytest.raises(AnnotationError, match=message):
        read_annotations(labels)


def test_a_bad_line_fails_its_image_only(tmp_path):
    images = tmp_path / "images"
    images.symlink_to(DATA / "images")
    labels = tmp_path / "labels.txt"
    good = '[{"transcription": "x", "points": [[10.5, 10], [90, 10], [90, 40], [10, 40]]}]'
    labels.write_text(f"icdar2015_img_1.jpg\t{good}\nicdar2015_img_2.jpg\t[{{]\n")
    summary = job.run(job.Job(images, labels, tmp_path / "t.zarr", jobs=1, progress=False, settings=PADDLE))
    assert summary.computed == 1
    (failure,) = summary.failures
    assert failure.where == f"{labels}: line 2 (icdar2015_img_2.jpg)"
    assert failure.problem.startswith("the label is not valid JSON")


def test_float_words_that_differ_by_one_ulp_do_not_share_a_hash_and_integer_ones_hash_as_before():
    word = np.array([[1.5, 2.0], [9.0, 2.25], [9.0, 8.0]], np.float32)
    nudged = word.copy()
    nudged[0, 0] = np.nextafter(nudged[0, 0], np.float32(2))
    hashes = {content_hash(b"image", ImageAnnotation("a.jpg", [w], [False]), "settings") for w in (word, nudged)}
    assert len(hashes) == 2
    rounded = np.array([[2, 2], [9, 2], [9, 8]], np.int32)
    before = hashlib.sha256(b"settings" + b"image" + b"W" + (3).to_bytes(4, "little") + rounded.astype("<i4").tobytes())
    assert content_hash(b"image", ImageAnnotation("a.jpg", [rounded], [False]), "settings") == before.hexdigest()


def det_config(folder: Path, ops: list, name: str = "det.yml") -> Path:
    """A PaddleOCR det config (as configs/det/det_mv3_db.yml lays one out) with ``ops`` before the target ops."""
    transforms = [
        {"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
        {"DetLabelEncode": None},
        *ops,
        {"MakeBorderMap": {"shrink_ratio": 0.4, "thresh_min": 0.3, "thresh_max": 0.7}},
        {"MakeShrinkMap": {"shrink_ratio": 0.4, "min_text_size": 8}},
        {"NormalizeImage": {"scale": "1./255.", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}},
        {"ToCHWImage": None},
        {"KeepKeys": {"keep_keys": ["image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask"]}},
    ]
    dataset = {"name": "SimpleDataSet", "data_dir": "./train_data/", "label_file_list": ["train.txt"]}
    config = {
        "Global": {"use_gpu": True, "epoch_num": 1200},
        "Train": {"dataset": {**dataset, "transforms": transforms}, "loader": {"shuffle": True}},
        "Eval": {"dataset": {**dataset, "transforms": transforms[:2] + [{"DetResizeForTest": None}]}},
    }
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


RANDOM = [
    {"IaaAugment": {"augmenter_args": [{"type": "Fliplr", "args": {"p": 0.5}}]}},
    {"EastRandomCropData": {"size": [640, 640], "max_tries": 50, "keep_ratio": True}},
]


@pytest.mark.parametrize("ops", [RANDOM, RANDOM[1:]])
def test_a_config_with_a_random_op_is_refused_naming_the_file_and_the_op(tmp_path, capsys, ops):
    images, labels = tmp_path / "images", write_labels(tmp_path)
    images.symlink_to(DATA / "images")
    config = det_config(tmp_path, ops)
    out = tmp_path / "t.zarr"
    code = main(["precompute", "--images", str(images), "--annotations", str(labels), "--out", str(out),
                 "--paddle-config", str(config), "--quiet"])  # fmt: skip
    assert code == 2 and not out.exists()
    op = next(iter(ops[0]))
    error = capsys.readouterr().err
    assert f"{config}: Train.dataset.transforms has {op}, a random op before the target ops" in error
    with pytest.raises(RandomOp) as refused:
        read_paddle_config(str(config))
    assert (refused.value.config, refused.value.op) == (str(config), op)


def test_a_config_with_resize_for_the_random_ops_makes_the_store_it_says(tmp_path, capsys):
    images, labels = tmp_path / "images", write_labels(tmp_path)
    images.symlink_to(DATA / "images")
    config = det_config(tmp_path, [{"Resize": {"size": [512, 512]}}])
    out = tmp_path / "t.zarr"
    code = main(["precompute", "--images", str(images), "--annotations", str(labels), "--out", str(out),
                 "--paddle-config", str(config), "--jobs", "1", "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    store = open_store(out)
    assert (store.settings.stack, store.size, store.pad, store.settings.stack_options) == ("paddleocr", 512, "none", {})
    lines = read_ufo(labels)
    name = store.filenames[3]
    np.testing.assert_array_equal(store[3].thresh_map, theirs(images, name, lines[name].label, 512)["threshold_map"])
    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 0


@pytest.mark.parametrize(
    ("ops", "section", "problem"),
    [
        ([{"DetResizeForTest": None}], "Train", "has DetResizeForTest before the target ops, not one ocr-targets"),
        ([], "Train", "has no Resize: a store holds square targets"),
        ([{"Resize": {"size": [640, 480]}}], "Train", r"Resize size \[640, 480\] is not a square"),
        ([{"Resize": {"size": [640, 640]}}], "Eval", "Eval.dataset.transforms has DetResizeForTest before"),
    ],
)
def test_a_config_ocr_targets_cannot_follow_is_refused_saying_why(tmp_path, ops, section, problem):
    config = det_config(tmp_path, ops)
    with pytest.raises(PaddleConfigError, match=problem):
        read_paddle_config(f"{config}:{section}")


def test_a_deterministic_config_gives_its_ops_settings(tmp_path):
    config = det_config(tmp_path, [{"Resize": {"size": [736, 736]}}])
    text = (
        config.read_text()
        .replace("min_text_size: 8", "min_text_size: 6")
        .replace("thresh_min: 0.3", "thresh_min: 0.25")
    )
    config.write_text(text)
    read = read_paddle_config(str(config))
    assert (read.size, read.targets, read.stack_options) == (736, TargetConfig(0.4, 0.25, 0.7), {"min_text_size": 6})


def resized(images: Path, name: str, label: str, size: int = SIZE) -> dict:
    """PaddleOCR's own DecodeImage, DetLabelEncode and Resize: the data dict the target ops get."""
    decode, encode, resize = paddle_label_ops()
    data = {"image": (images / name).read_bytes(), "label": label}
    for op in (decode(img_mode="BGR", channel_first=False), encode(), resize(size=[size, size])):
        data = op(data)
    return data


def test_stored_targets_serve_what_paddleocrs_ops_make(paddle_store):
    images, labels, out = paddle_store
    served = StoredTargets(store=str(out), use_gpu=True, epoch_num=1200)  # and Global's keys, as PaddleOCR passes them
    border, shrink = paddle_ops()
    lines = read_ufo(labels)
    for size in (SIZE, 512):  # 512: samples the store does not hold, computed by our ops
        for name, line in lines.items():
            data = resized(images, name, line.label, size)
            with np.errstate(all="ignore"):
                expected = shrink()(border()(copy.deepcopy(data)))
            got = served(copy.deepcopy(data))
            for key in ("threshold_map", "threshold_mask", "shrink_map", "shrink_mask", "polys", "ignore_tags"):
                assert got[key].dtype == expected[key].dtype, key
                np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{name} at {size}: {key}")
    assert (served.hits, served.misses) == (12, 12)


def test_stored_targets_refuse_a_baseline_store(made_store):
    with pytest.raises(OtherStack, match="made for the baseline stack .* StoredTargets serves the paddleocr"):
        StoredTargets(store=str(made_store[2]))
