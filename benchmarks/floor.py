"""The precompute job's floor, in a module of its own: the bench's worker processes import it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ocr_targets import TargetConfig, compute_targets
from ocr_targets.allocator import keep_freed_memory
from ocr_targets.images import load_sample
from ocr_targets.store import StoreSettings


def floor_work(folder: Path, sample: list, compute: Callable = compute_targets) -> None:
    """Each image decoded and its targets computed, nothing kept or written: the job's floor, with
    the allocator tuned as in the processes of the job."""
    keep_freed_memory(StoreSettings().block_bytes)
    for annotation in sample:  # kept, the maps of 224 images took 900 MB, 5 % of the time
        load_sample(folder, annotation, 640).targets(TargetConfig(), compute)
