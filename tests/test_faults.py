"""Every write of a job failing once, at every point in turn: a plain rerun must end with the
store a clean run makes, array by array, and ``verify`` must pass (issue: recovery by design).

The store is addressed as ``faulty://`` (:mod:`tests.faulty`), so zarr-python's fsspec store
and fsspec carry every write, rename, copy and delete, as on object storage; the zarrs
engine of a local store writes files itself, and is covered by the real full-disk tests.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import shutil

import cv2
import numpy as np
import pytest

from precompute.cli import main
from tests.faulty import FaultyFileSystem, url
from tests.helpers import assert_same_arrays


def precompute(images, annotations, out) -> tuple[int, str]:
    """``ocr-targets precompute`` in blocks of 2 at 96x96, one process: (exit status, what it printed).
    Small, so that a run costs little: the points where it writes are those of any store."""
    said = io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
        status = main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", url(out),
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


@pytest.mark.parametrize("scenario", ["first run", "update"])
def test_every_write_failing_once_is_finished_by_a_plain_rerun(receipts, tmp_path, scenario):
    root, images, annotations = receipts
    changed = tmp_path / "changed.json"
    update(annotations, changed)
    sources = annotations if scenario == "first run" else changed
    clean = tmp_path / "clean.zarr"
    assert precompute(images, sources, clean)[0] == 0

    before = tmp_path / "before.zarr"  # the store the failing run starts from
    if scenario == "update":
        assert precompute(images, annotations, before)[0] == 0

    def start(out):
        if before.exists():
            shutil.copytree(before, out)

    start(tmp_path / "counted.zarr")
    FaultyFileSystem.arm(None)
    assert precompute(images, sources, tmp_path / "counted.zarr")[0] == 0
    points = FaultyFileSystem.mutations
    assert points > 20
    wrong = []
    for point in range(1, points + 1):
        out = tmp_path / f"at-{point}.zarr"
        start(out)
        FaultyFileSystem.arm(point, errno.ENOSPC if point % 2 else errno.EIO)
        try:
            status, said = precompute(images, sources, out)
        finally:
            FaultyFileSystem.arm(None)
        # a fault in the clean-up after the last block costs nothing (0); any other is said in a line
        told = status == 0 or "injected" in said or "disk holding" in said
        if "Traceback" in said or status not in (0, 1, 2) or not told:
            wrong.append(f"{point}: the failing run ended {status}: {said[-300:]}")
        rerun, said = precompute(images, sources, out)
        checked = main(["verify", url(out), "--jobs", "1", "--quiet"]) if rerun == 0 else None
        if rerun != 0 or checked != 0:
            wrong.append(f"{point}: the rerun ended {rerun}, verify {checked}: {said[-300:]}")
            continue
        try:
            assert_same_arrays(url(clean), url(out))
        except AssertionError as error:
            wrong.append(f"{point}: the rerun's store differs: {str(error)[:300]}")
        shutil.rmtree(out)
    assert wrong == [], f"{len(wrong)} of {points} fault points"
