"""Validation epochs on a machine with a CUDA GPU: each batch moved to the device, as a trainer
moves it, on photographed receipts. The on-the-fly loader (the baseline's way) against the
YAML route (whole batches in the main process) and against compact batches from workers,
expanded on the GPU after the transfer (``expand_batch``)::

    python -m benchmarks.gpu [--images 96] [--workers 2 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ocr_targets.collate import OnTheFlyCollate, StoreCollate
from ocr_targets.dataset import StoreDataset, UFODataset, expand_batch
from ocr_targets.store import StoreSettings
from precompute.job import Job, run

from .synthetic import write_photos


def on_device(batches: Iterable[dict], expand: bool = False) -> Callable[[], int]:
    """An epoch that moves every tensor of each batch to the GPU (and expands compact ones there)."""

    def epoch() -> int:
        count = 0
        for batch in batches:
            moved = {k: v.to("cuda", non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            if expand:
                moved = expand_batch(moved)
            count += 1
        torch.cuda.synchronize()
        return count

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as scratch:
        folder, annotations = write_photos(Path(scratch), args.images, seed=1, shape=(2340, 1080), quality=85)
        out = Path(scratch) / "targets.zarr"
        run(Job(folder, annotations, out, jobs=max(args.workers), progress=False,
                settings=StoreSettings(with_images=True)))  # fmt: skip
        data = UFODataset(folder, annotations)

        def loader(dataset, collate, workers: int):
            extra = {"persistent_workers": True, "prefetch_factor": 2} if workers else {}
            return torch.utils.data.DataLoader(dataset, batch_size=12, num_workers=workers, collate_fn=collate,
                                               pin_memory=True, **extra)  # fmt: skip

        runs = {f"on the fly, {w} workers": on_device(loader(data, OnTheFlyCollate(), w)) for w in args.workers}
        runs["YAML route: StoreDataset + StoreCollate, 0 workers"] = on_device(
            loader(StoreDataset(out), StoreCollate(out), 0)
        )
        for w in args.workers:
            compact = loader(StoreDataset(out, compact=True), StoreCollate(out, compact=True), w)
            runs[f"compact, {w} workers, expanded on the GPU"] = on_device(compact, expand=True)
        timings: dict[str, list[float]] = {label: [] for label in runs}
        for _ in range(args.passes + 1):
            for label, epoch in runs.items():
                start = time.perf_counter()
                epoch()
                timings[label].append(time.perf_counter() - start)
    first = f"on the fly, {args.workers[0]} workers"
    best = {label: min(seconds[1:]) for label, seconds in timings.items()}
    print(f"{args.images} photographed receipts (1080x2340, 164 words), batch 12, pinned, moved to the GPU")
    print(f"{'epoch':<52}{'s':>8}{'vs ' + first:>26}")
    for label, seconds in best.items():
        print(f"{label:<52}{seconds:>8.3f}{best[first] / seconds:>25.1f}x")


if __name__ == "__main__":
    main()
