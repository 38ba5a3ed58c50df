"""Every write of a job failing once, at every point in turn: a plain rerun must end with the
store a clean run makes, array by array, and ``verify`` must pass (issue: recovery by design).

The store is addressed as ``faulty://`` or ``faultys3://`` (:mod:`tests.faulty`), so
zarr-python's fsspec store and fsspec carry every write, rename, copy and delete, on a local
disk (failing with ENOSPC or EIO) and on S3 (moto's server, failing as a lost connection);
the zarrs engine of a local store writes files itself, and is covered by the real full-disk
tests.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil

import cv2
import numpy as np
import pytest

from benchmarks.s3 import local_s3
from precompute.cli import main
from tests.faulty import Faults
from tests.helpers import assert_same_arrays


def precompute(images, annotations, out: str) -> tuple[int, str]:
    """``ocr-targets precompute`` in blocks of 2 at 96x96, one process: (exit status, what it printed).
    Small, so that a run costs little: the points where it writes are those of any store."""
    said = io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
        status = main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", out,
                       "--jobs", "1", "--block", "2", "--size", "96", "--quiet"])  # fmt: skip
    return status, said.getvalue()


@pytest.fixture(scope="module")
def receipts(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    images, annotations = root / "images", root / "annotations.json"
    images.mkdir()
    rng = np.random.default_rng(3)
    entries = {}
    for index in range(5):  # three blocks
        name = f"photo_{index}.png"
        cv2.imwrite(str(images / name), rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
        boxes = [(rng.uniform(0, 120), rng.uniform(0, 90), rng.uniform(20, 40), rng.uniform(10, 30)) for _ in range(4)]
        words = {
            f"{k}": {"points": [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]} for k, (x, y, w, h) in enumerate(boxes)
        }
        entries[name] = {"words": words}
    annotations.write_text(json.dumps({"images": entries}))
    return root, images, annotations


def update(annotations, target) -> None:
    """The annotation file with one word moved and the first two images swapped (across blocks)."""
    document = json.loads(annotations.read_text())
    entries = list(document["images"].items())
    entries[2], entries[0] = entries[0], entries[2]
    word = next(iter(entries[4][1]["words"].values()))
    word["points"] = [[x + 3, y] for x, y in word["points"]]
    target.write_text(json.dumps({"images": dict(entries)}))


@pytest.fixture(scope="module")
def s3():
    with local_s3() as fs:
        fs.mkdir("faults")
        yield fs


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path):
    """(the backend, a function of a store name to its faulty URL, one that copies a store)."""
    if request.param == "local":
        yield (
            "local",
            (lambda name: f"faulty://{tmp_path / name}"),
            (lambda a, b: shutil.copytree(tmp_path / a, tmp_path / b)),
        )
        return
    fs = request.getfixturevalue("s3")
    prefix = "faults/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())  # no glob characters

    def copy(a: str, b: str) -> None:
        fs.invalidate_cache()
        fs.copy(f"{prefix}/{a}", f"{prefix}/{b}", recursive=True)

    yield "s3", (lambda name: f"faultys3://{prefix}/{name}"), copy
    fs.invalidate_cache()
    if fs.exists(prefix):
        fs.rm(prefix, recursive=True)


def kinds(mutations: list[str]) -> list[int]:
    """The first point (1-based) of each kind of mutation: a verb (write, delete, copy, rename)
    on a kind of object (the lock, staging copies, the file list, done flags, metadata, shards)."""
    first: dict[tuple[str, str], int] = {}
    for point, mutation in enumerate(mutations, 1):
        verb, path = mutation.split(" ", 1)
        kind = next((name for key, name in _KINDS if key in path), "shards" if "/c/" in path else "metadata")
        first.setdefault((verb, kind), point)
    return sorted(first.values())


_KINDS = [(".lock", "lock"), (".staging", "staging"), ("filenames.json", "file list"), ("/done/c", "done flags")]


@pytest.mark.parametrize("scenario", ["first run", "update"])
def test_every_write_failing_once_is_finished_by_a_plain_rerun(receipts, tmp_path, backend, scenario):
    """Locally every point; on S3, where a run of this job costs seconds against moto's server,
    the first point of every kind of mutation (``make soak``, with ``FAULTS_EVERY=1``: every point)."""
    root, images, annotations = receipts
    where, url, copy = backend
    every = where == "local" or os.environ.get("FAULTS_EVERY") == "1"
    if where == "s3" and scenario == "update" and not every:
        pytest.skip("faults in an update on S3 take minutes against moto: `make soak` injects them")
    changed = tmp_path / "changed.json"
    update(annotations, changed)
    sources = annotations if scenario == "first run" else changed
    clean = f"faulty://{tmp_path / 'clean.zarr'}"
    assert precompute(images, sources, clean)[0] == 0
    if scenario == "update":  # the store the failing run starts from
        assert precompute(images, annotations, url("before.zarr"))[0] == 0

    def start(name: str) -> str:
        if scenario == "update":
            copy("before.zarr", name)
        return url(name)

    counted = start("counted.zarr")
    Faults.arm(None)
    assert precompute(images, sources, counted)[0] == 0
    points = len(Faults.mutations)
    assert points > 20
    chosen = range(1, points + 1) if every else kinds(Faults.mutations)
    wrong = []
    for point in chosen:
        out = start(f"at-{point}.zarr")
        Faults.arm(point, errno.ENOSPC if point % 2 else errno.EIO)
        try:
            status, said = precompute(images, sources, out)
        finally:
            Faults.arm(None)
        # a fault in the clean-up after the last block costs nothing (0); any other is said in a line
        told = status == 0 or "injected" in said or "disk holding" in said
        if "Traceback" in said or status not in (0, 1, 2) or not told:
            wrong.append(f"{point}: the failing run ended {status}: {said[-300:]}")
        rerun, said = precompute(images, sources, out)
        checked = main(["verify", out, "--jobs", "1", "--quiet"]) if rerun == 0 else None
        if rerun != 0 or checked != 0:
            wrong.append(f"{point}: the rerun ended {rerun}, verify {checked}: {said[-300:]}")
            continue
        try:
            assert_same_arrays(clean, out)
        except AssertionError as error:
            wrong.append(f"{point}: the rerun's store differs: {str(error)[:300]}")
    print(f"{where}, {scenario}: {len(chosen)} of {points} fault points injected, {len(chosen) - len(wrong)} clean")
    assert wrong == [], f"{len(wrong)} of {len(chosen)} fault points"
