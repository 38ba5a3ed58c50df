"""Hostile names, stale handles, the user's files, live locks: each row of issue 27's table."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ocr_targets import open_store
from ocr_targets.collate import StoreCollate
from ocr_targets.dataset import StoreDataset, UFODataset
from ocr_targets.images import ImageError, UnsafeName, image_location
from ocr_targets.location import Location
from ocr_targets.store import Changed, NotDone, StoreError, StoreSettings, Unowned
from ocr_targets.store._files import renew_generation
from ocr_targets.store.writing import StoreLock
from precompute.cli import main
from precompute.errors import CommandError
from precompute.memory import available_memory, require_fits
from precompute.text import printable
from tests.helpers import run_job

HOSTILE = ["../secret.jpg", "sub/../../secret.jpg", "link.jpg", "sub/link.jpg", "SECRET_ABSOLUTE"]


def add_images(annotations: Path, names: list[str], words_of: str = "icdar2015_img_1.jpg") -> None:
    """Append entries ``names`` to the annotation file, with the words of image ``words_of``."""
    document = json.loads(annotations.read_text())
    for name in names:
        document["images"][name] = document["images"][words_of]
    annotations.write_text(json.dumps(document))


@pytest.fixture
def hostile(dataset, tmp_path):
    """The sample plus five names that lead outside its folder to a readable image (``secret.jpg``),
    and one symlink that stays inside: (images, annotations, secret, names)."""
    images, annotations = dataset
    secret = tmp_path / "secret.jpg"
    shutil.copyfile(images / "icdar2015_img_1.jpg", secret)
    (images / "sub").mkdir()
    (images / "link.jpg").symlink_to(secret)
    (images / "sub" / "link.jpg").symlink_to("../../secret.jpg")
    (images / "inside.jpg").symlink_to(images / "icdar2015_img_2.jpg")
    names = [name.replace("SECRET_ABSOLUTE", str(secret)) for name in HOSTILE]
    add_images(annotations, [*names, "inside.jpg"])
    return images, annotations, secret, names


def test_names_outside_the_images_folder_fail_and_the_rest_is_stored(hostile, tmp_path):
    images, annotations, secret, names = hostile
    out = tmp_path / "t.zarr"
    summary = run_job(images, annotations, out, with_images=True)
    failed = {failure.image: failure for failure in summary.failures}
    assert sorted(failed) == sorted(names)
    for name in names:
        assert failed[name].stage == "image" and f"{images}/{name}: " in failed[name].message
        assert "not read (only files inside" in failed[name].message
    assert summary.computed == 13  # the 12 images and the symlink that stays inside
    store = open_store(out)
    assert int(store.done().sum()) == 13
    for name in names:
        with pytest.raises(StoreError, match="never completed"):
            store[name]  # noqa: B018
    assert (store["inside.jpg"].image == store["icdar2015_img_2.jpg"].image).all()


@pytest.mark.parametrize(
    ("name", "why"),
    [("../secret.jpg", "resolves outside"), ("sub/../../secret.jpg", "resolves outside"),
     ("link.jpg", "resolves outside"), ("sub/link.jpg", "resolves outside"), ("/etc/hostname", "absolute path"),
     ("a\0b.jpg", "NUL character")],
)  # fmt: skip
def test_image_location_refuses_every_way_out(hostile, name, why):
    images = hostile[0]
    with pytest.raises(UnsafeName, match=why) as refused:
        image_location(images, name)
    assert (refused.value.name, refused.value.folder.path) == (name, str(images))


def test_image_location_keeps_names_inside_and_object_keys_literal(hostile):
    images = hostile[0]
    assert image_location(images, "inside.jpg").path == f"{images}/inside.jpg"
    assert image_location(images, "sub/../icdar2015_img_1.jpg").path == f"{images}/sub/../icdar2015_img_1.jpg"
    assert image_location(images, "gone.jpg").path == f"{images}/gone.jpg"  # then "not found", as before
    assert image_location("s3://bucket/images", "../x.jpg").url == "s3://bucket/images/../x.jpg"


def test_verify_show_and_the_datasets_refuse_a_link_that_now_leads_outside(dataset, tmp_path, capsys):
    """A store made while a symlink stayed inside; the link then points out of the folder: every
    reader of image files refuses it, in one line, and reads nothing there."""
    images, annotations = dataset
    secret = tmp_path / "secret.jpg"
    shutil.copyfile(images / "icdar2015_img_3.jpg", secret)
    (images / "link.jpg").symlink_to(images / "icdar2015_img_1.jpg")
    add_images(annotations, ["link.jpg"])
    out = tmp_path / "t.zarr"
    assert run_job(images, annotations, out).failures == []
    (images / "link.jpg").unlink()
    (images / "link.jpg").symlink_to(secret)

    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 1
    output = capsys.readouterr().out
    assert f"1 entries could not be recomputed: {images}/link.jpg: resolves outside the images folder" in output
    assert main(["show", str(out), "link.jpg", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{images}/link.jpg: resolves outside the images folder" in err[0], err
    dataset_items = UFODataset(images, annotations)
    with pytest.raises(ImageError, match="resolves outside the images folder"):
        dataset_items[dataset_items.filenames.index("link.jpg")]
    with pytest.raises(StoreError, match=r"1 is stale \(image or words changed since precompute: link.jpg\)"):
        StoreCollate(out)


def reorder(annotations: Path, order: list[int], rename: dict[str, str] | None = None) -> None:
    document = json.loads(annotations.read_text())
    names = list(document["images"])
    rename = rename or {}
    document["images"] = {rename.get(names[i], names[i]): document["images"][names[i]] for i in order}
    annotations.write_text(json.dumps(document))


def test_handles_opened_before_a_reordering_rerun_refuse_instead_of_serving_other_maps(store_with_images):
    images, annotations, out = store_with_images
    data = UFODataset(images, annotations)
    items = [data[0], data[1]]
    store, collate, dataset = open_store(out), StoreCollate(out, data), StoreDataset(out)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1, collate_fn=collate)
    assert len(next(iter(loader))["images"]) == 2  # all served, before the rerun
    reorder(annotations, [1, 0, *range(2, 12)])  # the same images, two swapped
    assert run_job(images, annotations, out, with_images=True, block=64).moved == 2
    reads = [lambda: store[0], lambda: store.read_maps(1), lambda: collate(items), lambda: dataset[0],
             lambda: next(iter(loader))]  # fmt: skip
    for read in reads:
        with pytest.raises((Changed, RuntimeError), match="the store changed since it was opened .a precompute run"):
            read()
    with pytest.raises(Changed, match="the store changed since it was opened"):
        collate(StoreDataset(out).__getitems__([0, 1]))  # a batch read afresh, through the stale collate
    assert open_store(out)[0].filename == data.filenames[1]  # opened again: the right entries
    collated = StoreCollate(out)([UFODataset(images, annotations)[0]])
    assert collated["image_filename"] == [data.filenames[1]]


def test_an_overwrite_and_a_job_under_way_are_named_as_the_cause(made_store):
    images, annotations, out = made_store
    store = open_store(out)
    store[0]  # noqa: B018
    run_job(images, annotations, out, overwrite=True)
    with pytest.raises(Changed, match="a precompute run rewrote it"):
        store[0]  # noqa: B018
    store = open_store(out)
    lock = StoreLock(Location.of(out))
    try:
        renew_generation(Location.of(out))  # what a job does before it changes an entry
        with pytest.raises(Changed, match=r"a precompute job is writing it: process \d+ .*once that job is done"):
            store.done()
    finally:
        lock.release()


def test_a_rerun_that_changes_nothing_keeps_open_handles_serving(made_store):
    images, annotations, out = made_store
    store = open_store(out)
    before = store[3].prob_map
    assert run_job(images, annotations, out).reused == 12
    assert (store[3].prob_map == before).all()


def test_an_entry_read_by_index_checks_that_it_is_its_names(made_store, capsys):
    images, annotations, out = made_store
    names = json.loads((out / "filenames.json").read_text())
    names[0], names[1] = names[1], names[0]
    (out / "filenames.json").write_text(json.dumps(names))
    store = open_store(out)
    with pytest.raises(NotDone, match=rf"entry 0 \({names[0]}\) holds the targets of another image \({names[1]}\)"):
        store[0]  # noqa: B018
    with pytest.raises(NotDone, match="entry 1"):
        store.read_maps(1)
    assert store.misplaced() == [0, 1] and store.done().sum() == 10
    with pytest.raises(StoreError, match=r"2 hold another image's targets \(its file list and its entries disagree"):
        StoreCollate(out)
    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 1
    assert f"holds the targets of another image ({names[1]})" in capsys.readouterr().out
    assert run_job(images, annotations, out).reused == 12  # the same content in place: the rerun retags it
    assert open_store(out)[0].filename == names[1] and open_store(out).misplaced() == []


def test_an_image_renamed_in_place_is_served_under_its_new_name(made_store):
    images, annotations, out = made_store
    names = json.loads((out / "filenames.json").read_text())
    (images / names[5]).rename(images / "renamed.jpg")
    reorder(annotations, list(range(12)), {names[5]: "renamed.jpg"})
    assert run_job(images, annotations, out).computed == 0
    store = open_store(out)
    assert store["renamed.jpg"].index == 5 and store.done().all()


@pytest.mark.parametrize(
    "error",
    [NotDone("s.zarr", 3, "a.jpg", "b.jpg"), Changed("s.zarr", None), Unowned("s.zarr", ["README"]),
     UnsafeName(Location.of("/images"), "../x.jpg", "resolves outside the images folder")],
)  # fmt: skip
def test_the_errors_cross_process_boundaries_whole(error):
    """Raised in a joblib or DataLoader worker, an error is pickled: it arrives with its fields."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and vars(copy) == vars(error)


def every_path(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize(
    ("intruder", "named"),
    [("README.md", "README.md"), ("notes/", "notes"), ("val_images/", "val_images"),
     ("binary_maps/mine.txt", "binary_maps/mine.txt"), ("done/c/mine", "done/c/mine")],
)  # fmt: skip
def test_overwrite_deletes_nothing_of_a_folder_that_holds_the_users_files(made_store, intruder, named, capsys):
    images, annotations, out = made_store
    if intruder == "val_images/":  # the --images folder moved into the store's
        images = Path(shutil.move(images, out / "val_images"))
    elif intruder.endswith("/"):
        (out / intruder).mkdir()
    else:
        (out / intruder).write_text("the user's")
    before = every_path(out)
    arguments = ["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out)]
    assert main([*arguments, "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"({named}); nothing was deleted" in err[0], err
    assert every_path(out) == before


def test_overwrite_deletes_a_store_of_any_layout_whole(made_store):
    images, annotations, out = made_store
    run_job(images, annotations, out, with_images=True, block=8, overwrite=True)
    (out / "old_array").mkdir()  # an array of an older layout: its metadata and chunks
    (out / "old_array" / "zarr.json").write_text("{}")
    (out / "old_array" / "c" / "0").mkdir(parents=True)
    (out / "old_array" / "c" / "0" / "1").write_bytes(b"\0")
    run_job(images, annotations, out, overwrite=True)
    assert not (out / "old_array").exists() and not (out / "images").exists()
    assert open_store(out).done().all()


HOLD_LOCK = """
import sys
from ocr_targets.location import Location
from ocr_targets.store.writing import StoreLock
lock = StoreLock(Location.of(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
"""


def test_break_lock_refuses_a_live_holder_on_this_machine_and_says_whose_lock_it_took(made_store, capsys, caplog):
    images, annotations, out = made_store
    arguments = ["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                 "--block", "4", "--quiet", "--break-lock"]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=environment)  # fmt: skip
    try:
        assert holder.stdout.readline() == "locked\n"
        holder.send_signal(signal.SIGSTOP)  # alive, doing nothing: as a job stopped in a terminal
        assert main(arguments) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"--break-lock refused: the lock's holder, process {holder.pid} on " in err[0], err
        assert f"is alive on this machine; wait for it to finish, or stop it (kill {holder.pid})" in err[0]
    finally:
        holder.kill()
        holder.wait()
    with caplog.at_level(logging.WARNING):
        assert main(arguments) == 0
    assert f"--break-lock: the lock's holder, process {holder.pid} on " in caplog.text and "is gone" in caplog.text

    (out / ".lock").write_text(json.dumps({"host": "elsewhere", "pid": 7, "started": 1, "since": "then", "token": "t"}))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(arguments) == 0
    assert "--break-lock: took the lock of process 7 on elsewhere since then, a job this machine cannot see" in (
        caplog.text
    )
    assert not (out / ".lock").exists()


def refused_reads(*arguments: str) -> subprocess.CompletedProcess:
    """``python ARGUMENTS`` run as a process that file permissions apply to: as root (CI), root
    without the capabilities that override them."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("as root, permissions apply only without CAP_DAC_OVERRIDE, which needs setpriv (util-linux)")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [*prefix, sys.executable, *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, check=False)


def test_an_object_the_disk_refuses_is_named_with_its_cause_by_every_command(made_store):
    images, annotations, out = made_store
    shard = out / "thresh_map" / "c" / "1" / "0" / "0"  # entries 4 to 7
    shard.chmod(0)
    refused = f"{shard}: Permission denied: check the permissions of the files and folders there"
    verify = refused_reads("-m", "precompute", "verify", str(out), "--jobs", "1", "--quiet")
    assert verify.returncode == 1 and "Traceback" not in verify.stderr, verify.stderr
    verdicts = [line for line in verify.stdout.splitlines() if line.endswith(("ok", "there"))]
    assert len(verdicts) == 12 and sum(line.endswith(f"unreadable: {refused}") for line in verdicts) == 4
    assert "credentials" not in verify.stdout
    read = refused_reads("-c", f"from ocr_targets import open_store; open_store({str(out)!r})[5]")
    assert f"Unreadable: {out}: cannot read entry 5: {refused}" in read.stderr
    arguments = ["-m", "precompute", "precompute", "--images", str(images), "--annotations", str(annotations),
                 "--out", str(out), "--block", "4", "--quiet"]  # fmt: skip
    rerun = refused_reads(*arguments)
    assert (
        rerun.returncode == 0
        and (f"objects of entries kept as done the storage refuses: {refused}; neither this run nor --recheck")
        in rerun.stdout
    ), rerun.stdout
    recheck = refused_reads(*arguments, "--recheck")
    assert recheck.returncode == 2 and recheck.stderr.count("\n") == 1, recheck.stderr
    assert (
        f"cannot read entry 4, which --recheck does not recompute but needs to read; fix that, then rerun: {refused}"
        in (recheck.stderr)
    )
    info = refused_reads("-m", "precompute", "info", str(out))
    assert "entries      12 (12 done, 0 not done" in info.stdout, info.stderr
    shard.chmod(0o644)
    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 0


def test_names_with_control_characters_are_printed_escaped(dataset, tmp_path, capsys):
    images, annotations = dataset
    shutil.copyfile(images / "icdar2015_img_1.jpg", images / "two\nlines.jpg")
    add_images(annotations, ["two\nlines.jpg", "gone\x1b[2J.jpg"])
    out = tmp_path / "t.zarr"
    assert main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                 "--quiet"]) == 1  # fmt: skip
    output = capsys.readouterr().out
    assert "\x1b" not in output and "failed, image file not found: " in output and "gone\\x1b[2J.jpg (in " in output
    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 1
    table = capsys.readouterr().out.splitlines()
    assert any(line.startswith("two\\nlines.jpg ") and line.endswith(" ok") for line in table), table
    assert sum("gone\\x1b[2J.jpg" in line for line in table) == 1
    assert printable("a\u202eb\ud800") == "a\\u202eb\\ud800" and printable("reçu 1.jpg") == "reçu 1.jpg"


@pytest.mark.parametrize(("option", "value"), [("--block", "20000"), ("--size", "100000")])
def test_a_block_or_size_beyond_the_machines_memory_is_refused_before_anything_is_written(
    dataset, tmp_path, option, value, capsys
):
    images, annotations = dataset
    out = tmp_path / "t.zarr"
    arguments = ["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                 "--jobs", "2", "--quiet", "--block", "64", option, value]  # fmt: skip
    assert main(arguments) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GiB available; " in err[0] and " (or fewer --jobs)" in err[0], err
    assert not out.exists()
    largest = int(err[0].split("; --block ")[1].split(" ")[0]) if option == "--block" else None
    if largest:  # the largest block named fits, one more does not
        settings = StoreSettings(block=largest)
        require_fits(settings, 2, available_memory())
        with pytest.raises(CommandError):
            require_fits(StoreSettings(block=largest + 1), 2, available_memory())


def test_the_limits_follow_the_memory_given():
    settings = StoreSettings(block=64, size=640)
    require_fits(settings, 2, settings.process_bytes * 2)
    with pytest.raises(CommandError, match=r"--block 64 at --size 640: 2 processes .*; --block 32 fits at --size 640, "
                       r"--size 452 at --block 64 \(or fewer --jobs\)"):  # fmt: skip
        require_fits(settings, 2, settings.process_bytes)


def test_an_image_beyond_the_stores_capacity_fails_before_its_geometry(dataset, tmp_path, monkeypatch):
    images, annotations = dataset
    document = json.loads(annotations.read_text())
    square = [[10, 10], [20, 10], [20, 20], [10, 20]]
    document["images"]["icdar2015_img_1.jpg"]["words"] = {str(k): {"points": square} for k in range(16384)}
    annotations.write_text(json.dumps(document))
    computed = []
    from ocr_targets.stacks.baseline import Baseline

    real = Baseline.sample
    monkeypatch.setattr(Baseline, "sample", lambda self, *a, **k: computed.append(a[1].name) or real(self, *a, **k))
    summary = run_job(images, annotations, tmp_path / "t.zarr", jobs=1)
    (failure,) = [f for f in summary.failures if f.image == "icdar2015_img_1.jpg"]
    assert failure.stage == "annotation" and "16384 word polygons of 65536 points exceed the store's capacity" in (
        failure.message
    )
    assert "icdar2015_img_1.jpg" not in computed  # failed in the plan, never sent to a task


def test_a_store_a_fresh_job_is_creating_is_said_to_be_so_not_foreign(dataset, tmp_path, monkeypatch, capsys):
    """Between the root's creation and its attributes, a first run's store is a zarr store that is
    not yet ocr-targets': a reader is told a job is creating it, not to choose another --out."""
    from ocr_targets.store import _writer

    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    real, seen = _writer._create_arrays, []

    def create_arrays(group, specs, block):
        real(group, specs, block)  # the window: the lock held, the root without its attributes
        with pytest.raises(StoreError) as opening:
            open_store(out)
        seen.append(str(opening.value))
        seen.extend(
            (main([command, str(out), *extra]), capsys.readouterr().err)
            for command, extra in (("info", []), ("verify", ["--jobs", "1", "--quiet"]))
        )

    monkeypatch.setattr(_writer, "_create_arrays", create_arrays)
    run_job(images, annotations, out)
    creating = f"{out}: a precompute job is creating this store (process {os.getpid()} on "
    assert seen[0].startswith(creating), seen
    for status, error in seen[1:]:
        assert status == 2 and creating in error and "choose another --out" not in error, error
    assert len(open_store(out)) == 12
