import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.synthetic import write_receipts
from ocr_targets import TargetConfig, open_store, reference_targets
from ocr_targets.images import load_sample
from ocr_targets.location import Location
from ocr_targets.store import SCHEMA_VERSION, StoreError
from ocr_targets.store.writing import StoreLock
from ocr_targets.ufo import parse_entry, read_ufo
from precompute import job
from precompute.cli import main
from tests import stopping
from tests.conftest import DATA, FIXTURES
from tests.helpers import assert_same_arrays, assert_same_targets, run_job

run = run_job  # the job on 12 images in blocks of 4 unless told otherwise: three blocks


def chunk_mtimes(store: Path) -> dict[str, int]:
    return {str(p.relative_to(store)): p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}


def expected_targets(images: Path, annotations: Path, name: str, size: int = 640):
    """The reference targets of one image on the job's data path (the parity tests check that path)."""
    sample = load_sample(images, parse_entry(name, read_ufo(annotations)[name]), size)
    return sample, sample.targets(TargetConfig(), reference_targets)


def test_store_holds_the_reference_targets_of_every_image(dataset, tmp_path):
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    summary = run(images, annotations, out, jobs=2)
    assert (summary.computed, summary.reused, summary.failures) == (12, 0, [])
    store = open_store(out)
    assert store.filenames == list(read_ufo(annotations))
    for name in store.filenames:
        entry = store[store.index_of(name)]
        sample, expected = expected_targets(images, annotations, name)
        assert entry.filename == name
        assert_same_targets(entry, expected)
        assert entry.original_size == sample.letterbox.original_size and entry.orientation == sample.orientation
        np.testing.assert_array_equal(entry.matrix, sample.letterbox.matrix)
        np.testing.assert_array_equal(entry.inverse_matrix, sample.letterbox.inverse_matrix)
        assert len(entry.words) == len(sample.polygons) and entry.ignore == sample.ignore
        assert all(
            w.dtype == np.float32 and np.array_equal(w, p) for w, p in zip(entry.words, sample.polygons, strict=True)
        )
        assert entry.image is None
        assert entry.prob_map.dtype == np.float32 and entry.thresh_map.dtype == np.float32
    attrs = store.attrs
    assert attrs["settings"]["config"] == TargetConfig().to_dict() and attrs["geometry"]["size"] == 640
    assert attrs["schema_version"] == SCHEMA_VERSION and attrs["library_version"]


def test_rerun_recomputes_nothing(dataset, tmp_path):
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    run(images, annotations, out)
    before = chunk_mtimes(out)
    summary = run(images, annotations, out)
    assert (summary.computed, summary.reused) == (0, 12)
    after = chunk_mtimes(out)
    assert {key for key in after if after[key] != before.get(key)} == {"zarr.json"}  # attributes: "updated"


def test_a_rerun_removes_what_a_write_killed_before_its_rename_left(dataset, tmp_path):
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    run(images, annotations, out)
    (out / "filenames.json.partial").write_text('["half of a')  # ours, and zarr's:
    (out / "thresh_map/zarr.5f0e.partial").write_text('{"shape": [1')
    (out / "done/c/0.5f0e.partial").write_bytes(b"(\xb5/\xfd")
    assert run(images, annotations, out).reused == 12
    assert not list(out.rglob("*.partial")) and (out / "filenames.json").exists()


def test_changed_image_or_words_recompute_exactly_that_image(dataset, tmp_path):
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    run(images, annotations, out)
    before = chunk_mtimes(out / "binary_maps")

    image = cv2.imread(str(images / "wildreceipt_2.jpeg"))
    cv2.imwrite(str(images / "wildreceipt_2.jpeg"), image[:300])  # a different image: cropped
    document = json.loads(annotations.read_text())
    word = next(iter(document["images"]["icdar2015_img_3.jpg"]["words"].values()))
    word["points"] = [[x + 40, y] for x, y in word["points"]]
    annotations.write_text(json.dumps(document))

    summary = run(images, annotations, out)
    assert (summary.computed, summary.reused) == (2, 10)  # the other entries of their blocks carried over
    store = open_store(out)
    changed = {f"c/{store.index_of(name) // 4}/0/0/0" for name in ("wildreceipt_2.jpeg", "icdar2015_img_3.jpg")}
    assert len(changed) == 2
    after = chunk_mtimes(out / "binary_maps")
    assert {key for key in after if after[key] != before.get(key)} == changed
    assert store[store.index_of("wildreceipt_2.jpeg")].original_size == (300, 348)
    _, expected = expected_targets(images, annotations, "icdar2015_img_3.jpg")
    np.testing.assert_array_equal(store[store.index_of("icdar2015_img_3.jpg")].prob_map, expected.prob_map)


def test_done_flags_are_replaced_whole_never_rewritten_in_place(dataset, tmp_path):
    """A reader (``info``, a training job's check) may read the flags while a job sets them."""
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    run(images, annotations, out)
    held = tmp_path / "held"
    os.link(out / "done/c/0", held)  # the file as it is now, whatever happens to its name
    (images / "wildreceipt_2.jpeg").write_bytes((images / "wildreceipt_1.jpeg").read_bytes())
    assert run(images, annotations, out).computed == 1
    assert not os.path.samefile(out / "done/c/0", held)  # new files were renamed into place
    assert open_store(out).done().all()


def test_transcription_change_alone_recomputes_nothing(dataset, tmp_path):
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    run(images, annotations, out)
    document = json.loads(annotations.read_text())
    next(iter(document["images"]["wildreceipt_1.jpeg"]["words"].values()))["transcription"] = "SAFEWAY!"
    annotations.write_text(json.dumps(document))
    assert run(images, annotations, out).computed == 0


def test_other_parameters_are_refused_then_rebuilt_with_overwrite(dataset, tmp_path):
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    run(images, annotations, out)
    with pytest.raises(StoreError, match=r"other settings \(config: stored .*shrink_ratio.*--overwrite"):
        run(images, annotations, out, config=TargetConfig(shrink_ratio=0.5))
    summary = run(images, annotations, out, config=TargetConfig(shrink_ratio=0.5), overwrite=True)
    assert (summary.computed, summary.reused) == (12, 0)
    assert open_store(out).config.shrink_ratio == 0.5


def test_added_images_are_appended_and_the_rest_reused(dataset, tmp_path):
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    document = json.loads(annotations.read_text())
    full = dict(document["images"])
    document["images"] = dict(list(full.items())[:8])
    annotations.write_text(json.dumps(document))
    run(images, annotations, out)
    document["images"] = full
    annotations.write_text(json.dumps(document))
    summary = run(images, annotations, out)
    assert (summary.computed, summary.reused) == (4, 8)
    assert len(open_store(out)) == 12


def test_an_image_of_many_words_spans_runs_and_a_rerun_leaves_none_behind(dataset, tmp_path):
    images, annotations = dataset
    out, clean = tmp_path / "targets.zarr", tmp_path / "clean.zarr"
    original = annotations.read_text()
    document = json.loads(original)
    name = next(iter(document["images"]))
    corners = [(x, y) for x in range(20, 1240, 20) for y in range(20, 700, 19)]
    boxes = [[[x, y], [x + 14, y], [x + 14, y + 12], [x, y + 12]] for x, y in corners]
    document["images"][name]["words"] = {str(i): {"points": box} for i, box in enumerate(boxes)}
    annotations.write_text(json.dumps(document))
    run(images, annotations, out)
    store = open_store(out)
    index = store.index_of(name)
    sample, _ = expected_targets(images, annotations, name)
    assert len(sample.polygons) == len(boxes) > 2048  # three runs of word offsets, two of points
    assert all(np.array_equal(w, p) for w, p in zip(store[index].words, sample.polygons, strict=True))
    words, _, inverse = store.batch_words([index, (index + 1) % len(store)])[0]  # as the collate reads them
    assert all(np.array_equal(w, p) for w, p in zip(words, sample.polygons, strict=True))
    np.testing.assert_array_equal(inverse, sample.letterbox.inverse_matrix)
    assert (out / "word_offsets/c/0/2").is_file() and store.missing_objects(index) == []
    (out / "word_coords/c/0/1/0").unlink()
    assert store.missing_objects(index) == [f"{out}/word_coords/c/0/1/0"]

    annotations.write_text(original)  # back to a few words: the block is rewritten, its later runs go
    assert run(images, annotations, out).computed == 1
    assert not (out / "word_offsets/c/0/1").exists() and not (out / "word_coords/c/0/1/0").exists()
    run(images, annotations, clean)
    assert_same_arrays(clean, out, ignore=("file_stat",))


@pytest.mark.parametrize("dtype", ["float16", "uint8"])
def test_smaller_thresh_dtypes_stay_within_their_stated_error(dataset, tmp_path, dtype):
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    run(images, annotations, out, thresh_dtype=dtype)
    store = open_store(out)
    tolerance = store.attrs["thresh_tolerance"]
    assert tolerance > 1e-6
    for name in ("wildreceipt_1.jpeg", "icdar2015_img_6.jpg"):
        _, expected = expected_targets(images, annotations, name)
        stored = store[store.index_of(name)].thresh_map
        assert stored.dtype == np.float32
        assert np.abs(stored - expected.thresh_map).max() <= tolerance


def test_bad_inputs_are_reported_and_the_rest_stored(dataset, tmp_path):
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    (images / "icdar2015_img_1.jpg").unlink()
    (images / "icdar2015_img_2.jpg").write_bytes((FIXTURES / "broken.jpg").read_bytes())
    document = json.loads(annotations.read_text())
    next(iter(document["images"]["icdar2015_img_3.jpg"]["words"].values()))["points"][1] = [float("nan"), 3.0]
    annotations.write_text(json.dumps(document))

    status = main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                   "--jobs", "1", "--block", "4", "--quiet"])  # fmt: skip
    assert status == 1
    report = json.loads((tmp_path / "targets.zarr.failures.json").read_text())
    failed = {failure["image"]: failure for failure in report["failed"]}
    assert set(failed) == {"icdar2015_img_1.jpg", "icdar2015_img_2.jpg", "icdar2015_img_3.jpg"}
    assert "image file not found" in failed["icdar2015_img_1.jpg"]["message"]
    assert "icdar2015_img_1.jpg" in failed["icdar2015_img_1.jpg"]["message"]
    assert "cannot decode image" in failed["icdar2015_img_2.jpg"]["message"]
    assert "non-finite coordinates" in failed["icdar2015_img_3.jpg"]["message"]
    assert str(annotations) in failed["icdar2015_img_3.jpg"]["message"]
    # the report's fields say the same as each message, unparsed
    assert {key: failed["icdar2015_img_3.jpg"][key] for key in ("stage", "file", "entry")} == {
        "stage": "annotation", "file": str(annotations), "entry": "icdar2015_img_3.jpg",
    }  # fmt: skip
    assert failed["icdar2015_img_1.jpg"]["stage"] == "image" and failed["icdar2015_img_1.jpg"]["entry"] is None
    assert failed["icdar2015_img_1.jpg"]["file"] == str(images / "icdar2015_img_1.jpg")
    assert failed["icdar2015_img_1.jpg"]["problem"] == "image file not found"
    store = open_store(out)
    with pytest.raises(StoreError, match=r"icdar2015_img_2.jpg\) was never completed"):
        store[store.index_of("icdar2015_img_2.jpg")]
    batch = [store.index_of(name) for name in ("wildreceipt_1.jpeg", "icdar2015_img_2.jpg")]
    with pytest.raises(StoreError, match=r"icdar2015_img_2.jpg\) was never completed"):  # as the collate reads
        store.read_maps_into(batch, [store._empty_maps(), store._empty_maps()])
    assert store[store.index_of("wildreceipt_1.jpeg")].prob_map.any()

    # Fix the inputs: the next run computes exactly the three, and the report goes away.
    for name in ("icdar2015_img_1.jpg", "icdar2015_img_2.jpg"):
        (images / name).write_bytes((DATA / "images" / name).read_bytes())
    annotations.write_text((DATA / "annotations.json").read_text())
    summary = run(images, annotations, out)
    assert (summary.computed, summary.reused, summary.failures) == (3, 9, [])
    assert not (tmp_path / "targets.zarr.failures.json").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ('{"pictures": {}}', "expected a UFO object"), (None, "not found")],
)
def test_malformed_annotation_file_is_a_clear_error(dataset, tmp_path, capsys, content, message):
    images, annotations = dataset
    if content is None:
        annotations.unlink()
    else:
        annotations.write_text(content)
    status = main(["precompute", "--images", str(images), "--annotations", str(annotations),
                   "--out", str(tmp_path / "t.zarr"), "--quiet"])  # fmt: skip
    assert status == 2
    error = capsys.readouterr().err
    assert str(annotations) in error and message in error


def test_a_second_writer_is_refused(dataset, tmp_path):
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    run(images, annotations, out)
    lock = StoreLock(Location.of(out))
    try:
        with pytest.raises(StoreError, match=rf"locked by another precompute job \(process {os.getpid()} on "):
            run(images, annotations, out)
    finally:
        lock.release()
    assert run(images, annotations, out).reused == 12


def test_killed_run_resumes_to_the_same_store(tmp_path):
    images, annotations = write_receipts(tmp_path / "receipts", 40, seed=3)
    command = [sys.executable, "-m", "precompute", "--images", str(images), "--annotations", str(annotations),
               "--jobs", "1", "--block", "4", "--quiet"]  # fmt: skip
    whole = tmp_path / "whole.zarr"
    subprocess.run([*command, "--out", str(whole)], check=True, capture_output=True)

    out = tmp_path / "killed.zarr"
    killed = stopping.command(2, signal.SIGKILL, "precompute", *command[3:], "--out", str(out))  # at block 2
    assert subprocess.run(killed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == -signal.SIGKILL
    done = open_store(out).done()
    assert done.sum() == 8

    summary = run(images, annotations, out)
    assert summary.reused == done.sum() and summary.computed == 40 - done.sum()
    assert_same_arrays(whole, out)
    assert not list(out.rglob("*.partial"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--jobs", "0"], "argument --jobs: must be a number of processes >= 1, or -1 for one per core; got 0"),
        (["--jobs", "-2"], "argument --jobs: must be a number of processes >= 1, or -1 for one per core; got -2"),
        (["--size", "16"], "argument --size: must be at least 32, got 16"),
        (["--block", "0"], "argument --block: must be at least 1, got 0"),
        (["--shrink-ratio", "1.5"], "argument --shrink-ratio: must lie between 0 and 1, both excluded, got 1.5"),
        (["--thresh-max", "nan"], "argument --thresh-max: expected a finite number, got 'nan'"),
        (["--thresh-min", "0.8"], "--thresh-min 0.8 must be below --thresh-max 0.7"),
        (["--storage-option", "anon"], "argument --storage-option: expected KEY=VALUE, got 'anon'"),
        (["--dask", "local:1", "--jobs", "2"], "--jobs has no effect with --dask"),
    ],
)
def test_bad_options_are_refused_naming_the_option(dataset, tmp_path, capsys, options, message):
    images, annotations = dataset
    arguments = ["--images", str(images), "--annotations", str(annotations), "--out", str(tmp_path / "t.zarr")]
    with pytest.raises(SystemExit) as exit:
        main(["precompute", "--quiet", *arguments, *options])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ocr-targets precompute") and f"ocr-targets precompute: error: {message}" in err
    assert "Traceback" not in err and "TargetConfig" not in err
    assert not (tmp_path / "t.zarr").exists()


def test_images_that_are_not_there_stop_the_job_before_anything_is_written(dataset, tmp_path, capsys):
    images, annotations = dataset
    out = tmp_path / "t.zarr"
    for folder, said in [
        (tmp_path / "nowhere", "--images does not exist"),
        (annotations, "--images is not a directory"),
    ]:
        assert main(["precompute", "--images", str(folder), "--annotations", str(annotations), "--out", str(out)]) == 2
        assert capsys.readouterr().err == f"ocr-targets precompute: error: {folder}: {said}\n"
    other = tmp_path / "other"
    other.mkdir()
    (other / "unrelated.jpg").write_bytes((images / "wildreceipt_1.jpeg").read_bytes())
    assert main(["precompute", "--images", str(other), "--annotations", str(annotations), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"ocr-targets precompute: error: {other}: none of the 12 images that {annotations} names is there "
        f"(looked for {other / 'icdar2015_img_1.jpg'}, ...; the folder holds 1 file); "
        "check --images and --annotations\n"
    )
    assert not out.exists() and not (tmp_path / "t.zarr.failures.json").exists()


def test_images_one_folder_too_high_are_refused_naming_the_subfolder_that_holds_them(dataset, tmp_path, capsys):
    images, annotations = dataset
    top = tmp_path / "val"
    (top / "other").mkdir(parents=True)
    (top / "other" / "unrelated.jpg").write_bytes(b"x")
    images.rename(top / "images")
    out = tmp_path / "t.zarr"
    assert main(["precompute", "--images", str(top), "--annotations", str(annotations), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"ocr-targets precompute: error: {top}: none of the 12 images that {annotations} names is there "
        f"(looked for {top / 'icdar2015_img_1.jpg'}, ...), but 12 of them are in its subfolder images: "
        f"give --images {top / 'images'}\n"
    )
    assert not out.exists() and not (tmp_path / "t.zarr.failures.json").exists()


def test_many_failures_are_told_by_cause_the_first_few_each(dataset, tmp_path, capsys):
    images, annotations = dataset
    for name in ["icdar2015_img_2.jpg", "icdar2015_img_3.jpg", "icdar2015_img_4.jpg", "icdar2015_img_5.jpg"]:
        (images / name).unlink()
    (images / "icdar2015_img_6.jpg").write_bytes(b"not a picture")
    out = tmp_path / "t.zarr"
    assert (
        main(["precompute", "--quiet", "--images", str(images), "--annotations", str(annotations), "--out", str(out)])
        == 1
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("12 images: 7 computed, 0 reused, 5 failed in ")
    assert lines[1] == (
        "failed, image file not found: icdar2015_img_2.jpg, icdar2015_img_3.jpg, icdar2015_img_4.jpg and 1 more "
        f"(in {images})"
    )
    assert lines[2] == f"failed, not an image file that PIL can read: icdar2015_img_6.jpg (13 bytes) (in {images})"
    assert lines[3:] == ["(every failure is listed in the failure report)", f"failure report: {out}.failures.json"]
    assert len(json.loads((tmp_path / "t.zarr.failures.json").read_text())["failed"]) == 5


def test_out_that_is_not_a_store_is_refused(dataset, tmp_path):
    images, annotations = dataset
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="exists, is not empty and is not a zarr store"):
        run(images, annotations, tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_pad_is_an_option_recorded_in_the_store(dataset, tmp_path, capsys):
    images, annotations = dataset
    out = tmp_path / "top-left.zarr"
    assert main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                 "--pad", "top-left", "--jobs", "1", "--quiet"]) == 0  # fmt: skip
    store = open_store(out)
    assert store.pad == "top-left" and np.array_equal(store[10].matrix, np.diag([0.4, 0.4, 1.0]))
    assert main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                 "--jobs", "1", "--quiet"]) == 2  # fmt: skip
    assert "(pad: stored 'top-left', asked 'center'); rerun with --overwrite" in capsys.readouterr().err


def dead_holder(**changes) -> dict:
    """A lock's holder on this host whose process is gone (a number no process has)."""
    return {"host": socket.gethostname(), "pid": 2**22 + 17, "started": 1, "since": "then", "token": "dead", **changes}


@pytest.mark.parametrize(
    "left",
    [
        b"",  # an older version created the lock, then wrote it: killed in between
        json.dumps(dead_holder()).encode(),  # killed with kill -9
        json.dumps(dead_holder(pid=os.getppid(), started=-5)).encode(),  # its number now another process's
    ],
    ids=["empty", "process gone", "number reused"],
)
def test_a_lock_whose_holder_is_gone_is_taken_over(dataset, tmp_path, left):
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    run(images, annotations, out)
    (out / ".lock").write_bytes(left)
    assert run(images, annotations, out).reused == 12
    assert not (out / ".lock").exists() and not list(out.glob(".lock.*"))


def test_taking_over_a_dead_holders_lock_never_removes_a_new_one(tmp_path):
    """Two jobs saw the same dead holder; the first took its lock over. The second's take-over
    must leave the first's new lock where it is."""
    store = Location.of(tmp_path / "t.zarr")
    Path(store.path).mkdir()
    (Path(store.path) / ".lock").write_text(json.dumps(dead_holder()))
    first = StoreLock(store)
    late = StoreLock.__new__(StoreLock)
    late.store, late.object, late.token = store, store / ".lock", "late"
    late._take_over(dead_holder())
    assert json.loads((Path(store.path) / ".lock").read_text())["token"] == first.token
    with pytest.raises(StoreError, match="locked by another precompute job"):
        StoreLock(store)  # the first holds it: alive, in this very process
    first.release()
    assert not (Path(store.path) / ".lock").exists()


def test_a_job_starts_a_worker_process_per_block_of_work_at_most(monkeypatch):
    monkeypatch.setattr(job, "IMAGES_PER_PROCESS", 8)  # as a run has it (the suite lowers it: conftest)
    assert job.processes(2, 8) == 1  # a few images: computed in the job's own process
    assert job.processes(2, 12) == 2 and job.processes(8, 20) == 3 and job.processes(8, 200) == 8
    assert job.processes(-1, 10**6) == (os.cpu_count() or 1) and job.processes(1, 10**6) == 1


def test_a_plain_rerun_names_the_damage_it_keeps_and_the_flag_that_repairs_it(made_store, capsys):
    images, annotations, out = made_store
    shard = out / "thresh_map" / "c" / "1" / "0" / "0"  # entries 4 to 7
    assert shard.is_file()
    shard.unlink()
    arguments = ["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                 "--block", "4", "--jobs", "1", "--quiet"]  # fmt: skip
    assert main(arguments) == 0
    assert (
        f"objects of entries kept as done are missing: {shard}; this run does not look inside the entries it keeps: "
        "rerun with --recheck to recompute them"
    ) in capsys.readouterr().out
    assert main([*arguments, "--recheck"]) == 0
    assert "12 images: 4 computed, 8 reused" in capsys.readouterr().out
    assert main(arguments) == 0
    assert "missing" not in capsys.readouterr().out
