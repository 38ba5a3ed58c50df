"""What users run into: a full disk, bad paths, Ctrl-C and SIGTERM, reordered annotation files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from benchmarks.synthetic import write_receipts
from ocr_targets import open_store
from ocr_targets.location import Location
from precompute.cli import main
from tests import stopping
from tests.helpers import assert_same_arrays, flip_byte, run_job

run = run_job  # the job on 12 images in blocks of 4 unless told otherwise: three blocks


def one_error_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB filesystem of its own (tmpfs), that the test can grow later."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_the_run_once_and_a_rerun_finishes(tmp_path, small_disk, capsys):
    images, annotations = write_receipts(tmp_path / "receipts", 40, seed=5)
    out = small_disk / "t.zarr"
    arguments = ["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                 "--block", "4"]  # fmt: skip
    assert main([*arguments, "--jobs", "2", "--quiet"]) == 2
    line = one_error_line(capsys, f"the disk holding {out} is full", "images are done", "rerun the same command")
    finished = int(line.split("is full: ")[1].split(" of 40")[0])
    store = open_store(out)
    assert 0 < store.done().sum() == finished < 40
    subprocess.run(["mount", "-o", "remount,size=64m", "tmpfs", str(small_disk)], check=True)  # space freed
    assert main([*arguments, "--jobs", "2", "--quiet"]) == 0
    assert main(["verify", str(out), "--jobs", "2", "--quiet"]) == 0
    whole = tmp_path / "whole.zarr"
    run(images, annotations, whole, jobs=2)
    assert_same_arrays(whole, out)


@pytest.fixture(scope="module")
def one_block(tmp_path_factory):
    """40 receipts (one block) and the store a clean run makes of them: (images, annotations, store)."""
    root = tmp_path_factory.mktemp("one-block")
    images, annotations = write_receipts(root / "receipts", 40, seed=5)
    run(images, annotations, root / "whole.zarr", block=64)
    return images, annotations, root / "whole.zarr"


@pytest.mark.parametrize("percent", [5, 30, 55, 80, 95])
def test_a_disk_full_at_any_point_is_finished_by_a_plain_rerun(one_block, small_disk, percent, capsys):
    """The disk fills at ``percent`` of the finished store's size; with room made, the same
    command completes the store, whatever the first run left half written."""
    images, annotations, whole = one_block
    size = Location.of(whole).disk_usage()
    subprocess.run(["mount", "-o", f"remount,size={size * percent // 100}", "tmpfs", str(small_disk)], check=True)
    out = small_disk / "t.zarr"
    arguments = ["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                 "--jobs", "1", "--quiet"]  # fmt: skip
    assert main(arguments) == 2
    one_error_line(capsys, f"the disk holding {out} is full", "rerun the same command")
    subprocess.run(["mount", "-o", "remount,size=64m", "tmpfs", str(small_disk)], check=True)
    assert main(arguments) == 0
    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 0
    assert_same_arrays(whole, out)


def test_every_command_says_in_one_line_what_is_wrong_with_a_path(dataset, made_store, tmp_path, capsys):
    images, annotations = dataset
    store = made_store[2]
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a store")
    cases = [
        (["precompute", "--images", str(images), "--annotations", str(annotations), "--out", "/proc/x.zarr"],
         ["/proc/x.zarr", "cannot create the store"]),
        (["precompute", "--images", str(images), "--annotations", str(images), "--out", str(tmp_path / "a.zarr")],
         [str(images), "is a directory, not an annotation file"]),
        (["precompute", "--images", str(images), "--annotations", str(tmp_path / "no.json"), "--out",
          str(tmp_path / "b.zarr")], ["no.json", "annotation file not found"]),
        (["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(a_file)],
         [str(a_file), "exists and is not a directory"]),
        (["info", str(a_file)], [str(a_file), "is a file, not a store"]),
        (["info", str(tmp_path / "nothing.zarr")], ["nothing.zarr", "no target store here"]),
        (["verify", str(a_file)], [str(a_file), "is a file, not a store"]),
        (["verify", str(store), "--annotations", str(tmp_path)], [str(tmp_path), "is a directory"]),
        (["show", str(a_file), "x.jpg", "--out", str(tmp_path / "x.png")], [str(a_file), "is a file, not a store"]),
        (["show", str(store), "wildreceipt_1.jpeg", "--out", str(tmp_path / "no" / "x.png")],
         ["x.png", "the folder", "does not exist"]),
    ]  # fmt: skip
    for arguments, fragments in cases:
        assert main(arguments) == 2, arguments
        one_error_line(capsys, f"ocr-targets {arguments[0]}: error:", *fragments)


def test_an_image_name_that_is_a_directory_is_reported_as_such(dataset, tmp_path):
    images, annotations = dataset
    document = json.loads(annotations.read_text())
    document["images"]["folder.jpg"] = {"words": {}}
    annotations.write_text(json.dumps(document))
    (images / "folder.jpg").mkdir()
    summary = run(images, annotations, tmp_path / "t.zarr")
    (failure,) = summary.failures
    assert failure.image == "folder.jpg" and "folder.jpg: is a directory, not an image file" in failure.message


@pytest.mark.parametrize(
    ("sent", "status", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_ctrl_c_and_sigterm_stop_cleanly_and_a_rerun_finishes(tmp_path, sent, status, word):
    images, annotations = write_receipts(tmp_path / "receipts", 40, seed=6)
    out = tmp_path / "t.zarr"
    arguments = ["precompute", "--images", str(images), "--annotations", str(annotations),
                 "--out", str(out), "--jobs", "2", "--block", "4", "--quiet"]  # fmt: skip
    # the signal arrives as the second block is marked done: the run stops after it
    process = subprocess.Popen(stopping.command(2, sent, *arguments), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr and f"ocr-targets precompute: {word}: " in stderr
    assert "images are done; rerun the same command to finish" in stderr
    finished = int(stderr.split(f"{word}: ")[1].split(" of 40")[0])
    assert f"{finished} computed" in stdout
    store = open_store(out)
    assert store.done().sum() == finished == 8
    summary = run(images, annotations, out, jobs=2)
    assert (summary.reused, summary.computed) == (finished, 40 - finished)
    whole = tmp_path / "whole.zarr"
    run(images, annotations, whole, jobs=2)
    assert_same_arrays(whole, out)


def reorder(annotations: Path, order, rename: dict[str, str] | None = None) -> None:
    document = json.loads(annotations.read_text())
    names = list(document["images"])
    rename = rename or {}
    document["images"] = {rename.get(names[i], names[i]): document["images"][names[i]] for i in order}
    annotations.write_text(json.dumps(document))


def test_reordered_and_renamed_images_are_moved_not_recomputed(dataset, tmp_path):
    images, annotations = dataset
    out = tmp_path / "t.zarr"
    run(images, annotations, out, with_images=True)
    (images / "wildreceipt_2.jpeg").rename(images / "receipt_b.jpeg")
    reorder(annotations, [11, 3, 0, 1, 2, 10, 9, 8, 7, 6, 5, 4], {"wildreceipt_2.jpeg": "receipt_b.jpeg"})
    summary = run(images, annotations, out, with_images=True)
    assert (summary.computed, summary.reused, summary.moved, summary.failures) == (0, 0, 12, [])
    assert not (out / ".staging").exists()
    clean = tmp_path / "clean.zarr"
    run(images, annotations, clean, with_images=True)
    assert_same_arrays(clean, out)

    reorder(annotations, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])  # one image fewer: the store shrinks
    assert run(images, annotations, out, with_images=True).computed == 0
    assert len(open_store(out)) == 11


def test_a_run_that_dies_while_moving_entries_is_completed_by_the_next(dataset, tmp_path, monkeypatch):
    images, annotations = dataset
    out = tmp_path / "t.zarr"
    run(images, annotations, out)
    reorder(annotations, list(reversed(range(12))))
    calls = []
    real_copy = Location.copy_to

    def dying_copy(self, target):
        calls.append(target)
        if len(calls) == 20:  # some shards copied aside, the rest not
            raise RuntimeError("killed")
        real_copy(self, target)

    monkeypatch.setattr(Location, "copy_to", dying_copy)
    with pytest.raises(RuntimeError, match="killed"):
        run(images, annotations, out)
    monkeypatch.setattr(Location, "copy_to", real_copy)
    summary = run(images, annotations, out)
    assert summary.moved + summary.reused + summary.computed == 12 and summary.computed < 12
    clean = tmp_path / "clean.zarr"
    run(images, annotations, clean)
    assert_same_arrays(clean, out)


def test_a_damaged_hash_or_done_chunk_is_recomputed_not_fatal(made_store):
    images, annotations, out = made_store
    flip_byte(out, "content_hash", 7)  # its block is recomputed, and the summary says so
    summary = run(images, annotations, out)
    assert summary.computed == 4
    lines = summary.lines()
    assert lines[1] == "computed: icdar2015_img_5.jpg, icdar2015_img_6.jpg, icdar2015_img_7.jpg, icdar2015_img_8.jpg"
    assert "4 entries were recomputed because their stored objects could not be read (the first: " in lines[2]
    assert "content_hash" in lines[2] and "damaged or unreadable" in lines[2]
    data = bytearray((out / "done" / "c" / "0").read_bytes())
    data[len(data) // 2] ^= 0x20
    (out / "done" / "c" / "0").write_bytes(bytes(data))  # nothing can be trusted
    summary = run(images, annotations, out)
    assert (summary.reused, summary.computed, summary.failures) == (0, 12, [])
    assert summary.lines()[1].startswith("12 entries were recomputed because their stored objects could not be read")


def test_recheck_recomputes_what_verify_calls_corrupt(made_store, capsys):
    images, annotations, out = made_store
    flip_byte(out, "thresh_map", 5)
    (out / "word_coords" / "c" / "2" / "0" / "0").unlink()  # the words of entries 8 to 11
    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 1
    output = capsys.readouterr().out
    assert "entry 5: damaged or unreadable" in output and f"objects missing: {out}/word_coords/c/2/0/0" in output
    assert run(images, annotations, out).computed == 0  # a plain rerun trusts done entries
    summary = run(images, annotations, out, recheck=True)
    assert (summary.reused, summary.computed) == (7, 5)
    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 0
