"""Soak: a few hundred images, SIGKILL at 5 random moments, 3 chunks damaged between runs.

Run by ``make soak`` (marked slow, so ``make test`` leaves it out). The seed is printed;
``SOAK_SEED=N make soak`` replays a run.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from benchmarks.synthetic import write_receipts
from ocr_targets import open_store
from tests.helpers import assert_same_arrays, flip_byte

IMAGES = 300
# Arrays a rerun does not read back (it reads done flags and hashes, and recomputes what is damaged
# there by itself): damage in these only `verify` can find, and `--recheck` repair.
DAMAGEABLE = ("binary_maps", "thresh_map", "matrices", "image_info", "word_coords", "shrunk_coords")


@pytest.mark.slow
def test_kills_and_damage_end_in_the_clean_store(tmp_path):
    seed = int(os.environ.get("SOAK_SEED", time.time_ns() % 2**32))
    print(f"soak seed {seed}")
    rng = random.Random(seed)
    images, annotations = write_receipts(tmp_path / "receipts", IMAGES, seed=seed % 1000)
    out = tmp_path / "soak.zarr"
    command = [sys.executable, "-m", "precompute", "--images", str(images), "--annotations", str(annotations),
               "--out", str(out), "--jobs", "2", "--quiet"]  # fmt: skip
    damaged = []
    for kill in range(5):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.5, 5.0))
        process.kill()
        process.wait()
        done = open_store(out).done().nonzero()[0].tolist() if (out / "filenames.json").exists() else []
        if kill < 3 and done:
            index, array = rng.choice(done), rng.choice(DAMAGEABLE)
            flip_byte(out, array, index)
            damaged.append(index)
    for _ in range(3):  # reruns until the job completes
        if subprocess.run(command, capture_output=True).returncode == 0:
            break
    assert open_store(out).done().all()

    found = subprocess.run(
        [sys.executable, "-m", "precompute", "verify", str(out), "--quiet"], capture_output=True, text=True
    )
    assert found.returncode == 1
    for index in damaged:
        assert f"entry {index}: damaged" in found.stdout, index

    assert subprocess.run([*command, "--recheck"], capture_output=True).returncode == 0
    assert subprocess.run([sys.executable, "-m", "precompute", "verify", str(out), "--quiet"]).returncode == 0
    clean = tmp_path / "clean.zarr"
    subprocess.run([*command[:-5], "--out", str(clean), "--jobs", "2", "--quiet"], check=True)
    assert_same_arrays(clean, out)
