"""What a user reads: the job's summary and progress, and errors that name the file, the cause
and the next step, never a traceback."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ocr_targets import open_store
from ocr_targets.collate import StoreCollate
from ocr_targets.dataset import UFODataset
from ocr_targets.doctr_labels import SHAPE as DOCTR_SHAPE
from ocr_targets.images import ImageError, decode_image
from ocr_targets.location import Location
from ocr_targets.paddle_labels import SHAPE as PADDLE_SHAPE
from ocr_targets.store import StoreError
from ocr_targets.ufo import UFO_SHAPE, AnnotationError, parse_entry
from precompute.cli import main
from precompute.errors import Stop, StopCause
from precompute.job import Summary
from precompute.tasks import Failure, Stage, storage_stop
from tests.helpers import run_job


def precompute(images, annotations, out, *options: str) -> list[str]:
    """``ocr-targets precompute`` in a process of its own, stderr a pipe as in a log: (stdout, stderr)."""
    command = [sys.executable, "-m", "precompute", "--images", str(images), "--annotations", str(annotations),
               "--out", str(out), "--jobs", "1", *options]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return [done.stdout, done.stderr]


def test_progress_into_a_pipe_is_plain_lines_and_a_rerun_names_what_it_computed(dataset, tmp_path):
    images, annotations = dataset
    out = tmp_path / "t.zarr"
    stdout, stderr = precompute(images, annotations, out)
    assert "\r" not in stderr and stderr.splitlines()[-1] == "computing: 12 of 12 images"
    assert stdout.startswith("12 images: 12 computed, 0 reused, 0 failed in ") and " images/s computed); " in stdout
    stdout, stderr = precompute(images, annotations, out)
    assert stderr == ""  # nothing to compute: no bar
    assert stdout.startswith("12 images: 0 computed, 12 reused, 0 failed in ") and "images/s" not in stdout
    document = json.loads(annotations.read_text())
    word = next(iter(document["images"]["wildreceipt_2.jpeg"]["words"].values()))
    word["points"][0][0] += 3
    annotations.write_text(json.dumps(document))
    stdout, stderr = precompute(images, annotations, out)
    assert stderr.splitlines() == ["computing: 1 of 1 images"]  # what the bar counts is what was computed
    assert stdout.splitlines()[:2][1] == "computed: wildreceipt_2.jpeg"


def test_a_duplicate_image_is_reused_as_a_copy_not_called_moved(dataset, tmp_path):
    images, annotations = dataset
    document = json.loads(annotations.read_text())
    document["images"]["copy.jpg"] = document["images"]["icdar2015_img_3.jpg"]
    (images / "copy.jpg").write_bytes((images / "icdar2015_img_3.jpg").read_bytes())
    out = tmp_path / "t.zarr"
    annotations.write_text(json.dumps(document))
    run_job(images, annotations, out)
    document["images"] = dict(reversed(list(document["images"].items())))  # every entry elsewhere now
    annotations.write_text(json.dumps(document))
    summary = run_job(images, annotations, out)
    assert summary.lines()[0].startswith("13 images: 0 computed, 13 reused (12 copied from another entry of the same")


def test_a_store_with_entries_never_completed_says_so_not_stale(dataset, tmp_path):
    images, annotations = dataset
    (images / "icdar2015_img_8.jpg").write_bytes(b"broken")
    out = tmp_path / "t.zarr"
    run_job(images, annotations, out)
    with pytest.raises(StoreError) as error:
        StoreCollate(out, UFODataset(images, annotations))
    message = str(error.value)
    assert "of its 12 entries, 1 was never completed (image failed, or run interrupted: icdar2015_img_8.jpg)" in message
    assert "stale" not in message and "ocr-targets precompute --images" in message


def test_an_entry_is_read_by_name_and_an_unknown_name_is_a_key_error_naming_it(made_store):
    store = open_store(made_store[2])
    assert store["wildreceipt_1.jpeg"].index == store.index_of("wildreceipt_1.jpeg")
    with pytest.raises(KeyError, match=r"'nope.jpg' is not in the store .*targets.zarr"):
        store["nope.jpg"]


def test_an_undecodable_file_is_named_without_pythons_internals(tmp_path):
    with pytest.raises(ImageError) as error:
        decode_image(b"plain text, not a picture", tmp_path / "a.jpg")
    assert str(error.value) == f"{tmp_path / 'a.jpg'}: not an image file that PIL can read (25 bytes)"


def test_every_bad_word_of_an_image_is_told_at_once():
    words = {"1": {"points": [[0, 0], [1, 0], [1, 1]]}, "2": {}, "3": {"points": [[0, "x"]]}, "4": {"points": [[1]]}}
    with pytest.raises(AnnotationError) as error:
        parse_entry("a.jpg", {"words": words})
    assert str(error.value) == (
        'a.jpg: words that cannot be used (word 2 has no "points" list; word 3 points are not [[x, y], ...] '
        "numbers: [[0, 'x']]; word 4 points must be [[x, y], ...], got shape (1, 1))"
    )


def test_verify_options_that_would_be_ignored_are_refused(made_store, capsys):
    out = made_store[2]
    for arguments, said in [
        (["--seed", "3"], "--seed chooses the entries of --sample; give --sample K too"),
        (["--jobs", "0"], "argument --jobs: must be a number of processes >= 1, or -1 for one per core; got 0"),
        (["--sample", "0"], "argument --sample: must be at least 1, got 0"),
    ]:
        with pytest.raises(SystemExit) as exit:
            main(["verify", str(out), *arguments])
        assert exit.value.code == 2
        assert f"ocr-targets verify: error: {said}" in capsys.readouterr().err


def test_more_jobs_than_cores_are_lowered_and_said(made_store, capsys):
    out = made_store[2]
    assert main(["verify", str(out), "--quiet", "--sample", "1", "--jobs", str((os.cpu_count() or 1) + 5)]) == 0
    assert f"lowered to {os.cpu_count()}, the cores of this machine" in capsys.readouterr().err


def test_entry_sizes_are_documented_as_each_is_stored(made_store):
    """``Entry.original_size`` is (height, width); the batch's ``raw_size`` is the baseline's (width, height)."""
    entry = open_store(made_store[2])["wildreceipt_1.jpeg"]
    height, width = entry.original_size
    assert (height, width) == (1200, 1600)  # a landscape receipt photo
    assert np.allclose(entry.matrix @ [width, height, 1], [640, 80 + 480, 1])  # its corner, resized, padded


def test_verify_into_a_pipe_reports_progress_in_plain_lines(made_store):
    command = [sys.executable, "-m", "precompute", "verify", str(made_store[2]), "--jobs", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and "\r" not in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == "verifying: 12 of 12 images"


def test_the_command_lines_defaults_are_the_store_settings_own(capsys):
    from ocr_targets.store import StoreSettings
    from precompute.cli import build_parser, settle

    args = build_parser().parse_args(["precompute", "--images", "i", "--annotations", "a.json", "--out", "o.zarr"])
    settle(args)  # the stack's own defaults: the baseline's
    default = StoreSettings()
    assert (args.size, args.pad, args.thresh_dtype, args.block) == (
        default.size, default.pad, default.thresh_dtype, default.block,
    )  # fmt: skip
    assert (args.shrink_ratio, args.thresh_min, args.thresh_max) == tuple(default.config.to_dict().values())
    with pytest.raises(SystemExit):
        build_parser().parse_args(["verify", "--help"])
    assert "--dask" not in capsys.readouterr().out  # verify has none
    with pytest.raises(SystemExit):
        build_parser().parse_args(["precompute", "--help"])
    assert "(--size by --size RGB uint8" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("shape", ["words as a list", "flat points"])
def test_an_annotation_file_of_another_format_stops_before_anything_is_written(dataset, tmp_path, capsys, shape):
    images, annotations = dataset
    document = json.loads(annotations.read_text())
    for entry in document["images"].values():
        if shape == "words as a list":
            entry["words"] = list(entry["words"].values())
        else:
            for word in entry["words"].values():
                word["points"] = [value for point in word["points"] for value in point]
    annotations.write_text(json.dumps(document))
    out = tmp_path / "targets.zarr"
    status = main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                   "--quiet"])  # fmt: skip
    assert status == 2 and not out.exists()
    said = capsys.readouterr().err
    assert f"{annotations}: none of its 12 images' entries can be read, so nothing was written (the first: " in said
    assert 'expected {"images": {name: {"words": {id: {"points": [[x, y], ...]}}}}}' in said


@pytest.mark.parametrize(
    ("stop", "status", "said"),
    [
        (Stop(StopCause.INTERRUPTED), 130, "ocr-targets precompute: interrupted: 5 of 12 images are done; rerun"),
        (Stop(StopCause.TERMINATED), 143, "ocr-targets precompute: terminated: 5 of 12 images are done; rerun"),
        (Stop(StopCause.DISK_FULL), 2, "is full: 5 of 12 images are done; free some space and rerun"),
        (
            Stop(StopCause.STORAGE, "s3://bucket/t.zarr: connection lost"),
            2,
            "ocr-targets precompute: error: s3://bucket/t.zarr: connection lost: 5 of 12 images are done; rerun the "
            "same command to finish the job once the storage answers again",
        ),
    ],
)
def test_a_run_stopped_early_exits_and_advises_by_its_cause(dataset, tmp_path, monkeypatch, capsys, stop, status, said):
    from precompute import job

    def stopped(work):
        raise job.Stopped(stop, job.Summary(images=12), held=5)

    monkeypatch.setattr(job, "run", stopped)
    images, annotations = dataset
    out = tmp_path / "t.zarr"
    assert main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out)]) == status
    assert said in capsys.readouterr().err


def test_a_full_disk_is_told_by_its_number_or_by_its_text_alone(tmp_path):
    store = Location.of(tmp_path / "t.zarr")
    assert storage_stop(OSError(errno.ENOSPC, "No space left on device"), store) == Stop(StopCause.DISK_FULL)
    assert storage_stop(RuntimeError("zarrs: No space left on device"), store) == Stop(StopCause.DISK_FULL)
    refused = PermissionError(errno.EACCES, "Permission denied", "t.zarr/c/0")
    assert storage_stop(refused, store) == Stop(
        StopCause.STORAGE, "t.zarr/c/0: Permission denied: check the permissions of the files and folders there"
    )


def test_failures_are_grouped_by_problem_naming_each_image_first_with_its_detail():
    summary = Summary(images=9, folder="data/images")
    for index in range(5):
        entry = Failure(index, f"img{index}.jpg", Stage.ANNOTATION, "val.json", f"img{index}.jpg", "bad words", "w 1")
        summary.count(entry.image, entry)
    summary.count("a.jpg", Failure(5, "a.jpg", Stage.IMAGE, "data/images/a.jpg", None, "cannot decode image", "9 B"))
    lines = summary.lines()
    assert lines[1:] == [
        "failed, bad words: img0.jpg (w 1), img1.jpg (w 1), img2.jpg (w 1) and 2 more (in val.json)",
        "failed, cannot decode image: a.jpg (9 B) (in data/images)",
        "(every failure is listed in the failure report)",
    ]


def test_entries_that_fail_alike_are_told_in_one_line_naming_the_annotation_file(dataset, tmp_path, capsys):
    images, annotations = dataset
    document = json.loads(annotations.read_text())
    names = list(document["images"])[:4]
    for name in names:
        document["images"][name] = ["not", "an", "object"]
    annotations.write_text(json.dumps(document))
    out = tmp_path / "t.zarr"
    status = main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                   "--quiet"])  # fmt: skip
    assert status == 1
    assert (
        f"failed, entry is not an object: {names[0]}, {names[1]}, {names[2]} and 1 more (in {annotations})\n"
        in capsys.readouterr().out
    )


def test_entries_with_different_bad_words_are_told_in_one_line_each_with_its_words(dataset, tmp_path, capsys):
    images, annotations = dataset
    document = json.loads(annotations.read_text())
    names = list(document["images"])[:2]
    document["images"][names[0]]["words"]["bad"] = {"text": "x"}
    document["images"][names[1]]["words"]["worse"] = {"points": [[1]]}
    annotations.write_text(json.dumps(document))
    status = main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out",
                   str(tmp_path / "t.zarr"), "--quiet"])  # fmt: skip
    assert status == 1
    assert (
        f'failed, words that cannot be used: {names[0]} (word bad has no "points" list), '
        f"{names[1]} (word worse points must be [[x, y], ...], got shape (1, 1)) (in {annotations})\n"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize("format", ["ufo", "doctr", "paddle"])
def test_a_file_of_each_format_none_of_whose_entries_can_be_read_names_that_formats_shape(
    dataset, tmp_path, capsys, format
):
    images, annotations = dataset
    names = list(json.loads(annotations.read_text())["images"])
    flat = [10, 10, 90, 10, 90, 40]  # points not as [[x, y], ...]
    if format == "ufo":
        annotations.write_text(json.dumps({"images": {name: {"words": {"1": {"points": flat}}} for name in names}}))
    elif format == "doctr":
        annotations = tmp_path / "labels.json"
        annotations.write_text(json.dumps({name: {"polygons": [flat]} for name in names}))
    else:
        annotations = tmp_path / "labels.txt"
        word = json.dumps([{"transcription": "x", "points": flat}])
        annotations.write_text("".join(f"{name}\t{word}\n" for name in names))
    out = tmp_path / "t.zarr"
    status = main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                   "--quiet"])  # fmt: skip
    assert status == 2 and not out.exists() and not (tmp_path / "t.zarr.failures.json").exists()
    said = capsys.readouterr().err
    assert f"{annotations}: none of its 12 images' entries can be read, so nothing was written (the first: " in said
    shape = {"ufo": UFO_SHAPE, "doctr": DOCTR_SHAPE, "paddle": PADDLE_SHAPE}[format]
    assert said.rstrip("\n").endswith(f"; expected {shape}")
