"""`make bench`: the fast paths against the on-the-fly path, side by side, in one run.

Timings are the best of a few passes (the least disturbed by other work on a shared
machine); each section prints its ratios against the on-the-fly cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ocr_targets import TargetConfig, compute_targets, reference_targets
from ocr_targets.allocator import keep_freed_memory
from ocr_targets.hashing import settings_digest
from ocr_targets.images import load_sample
from ocr_targets.location import Location
from ocr_targets.staleness import current_hashes
from ocr_targets.store import DEFAULT_BLOCK, StoreSettings
from ocr_targets.ufo import parse_entry, read_ufo
from precompute.job import Job, run

try:
    import torch

    from ocr_targets.collate import OnTheFlyCollate, StoreCollate, _Collate
    from ocr_targets.dataset import StoreDataset, UFODataset
except ImportError:  # the loader section needs the torch extra
    torch = None

from .synthetic import receipt_polygons, write_receipts

DATA = Path(__file__).resolve().parent.parent / "data"
JOB_BLOCKS = 8  # the job section's images: this many blocks of the default size, four for each of two processes


def best_seconds(run: Callable[[], object], passes: int = 3) -> float:
    """The fastest of ``passes`` runs, in seconds."""
    timings = []
    for _ in range(passes):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def best_interleaved(runs: dict[str, Callable[[], object]], passes: int, warm_up: bool = True) -> dict[str, float]:
    """The fastest of ``passes`` runs of each, taken in turn, so that all see the same
    state of the machine (the page cache, the allocator's free pages); after one untimed
    run of each, which starts worker pools and fills caches, unless ``warm_up`` is False."""
    timings: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(passes + warm_up):
        for label, function in runs.items():
            timings[label].append(best_seconds(function, passes=1))
    return {label: min(seconds[warm_up:]) for label, seconds in timings.items()}


def bundled_scenes(size: int = 640) -> list[tuple[tuple[int, int], list[np.ndarray]]]:
    """The bundled real samples, brought to the validation geometry."""
    scenes = []
    for name, entry in read_ufo(DATA / "annotations.json").items():
        scenes.append(((size, size), load_sample(DATA / "images", parse_entry(name, entry), size).polygons))
    return scenes


def bench_maps(images: int) -> None:
    print("== target maps, one process, one core (ms per image)")
    print(f"{'input':<34}{'on the fly':>12}{'fast path':>12}{'ratio':>9}")
    rng = np.random.default_rng(0)
    receipts = [((640, 640), receipt_polygons(rng)) for _ in range(images)]
    compute_targets(*receipts[0])  # compile (or load) the kernel outside the timing
    for label, scenes in [
        (f"synthetic receipts ({images}, 100 words)", receipts),
        ("bundled samples (12)", bundled_scenes()),
    ]:
        timings = best_interleaved(
            {
                "reference": lambda s=scenes: [reference_targets(*scene) for scene in s],
                "fast": lambda s=scenes: [compute_targets(*scene) for scene in s],
            },
            passes=5,
        )
        reference, fast = timings["reference"] / len(scenes), timings["fast"] / len(scenes)
        print(f"{label:<34}{reference * 1e3:>12.2f}{fast * 1e3:>12.2f}{reference / fast:>8.1f}x")


def bench_job(images: int) -> None:
    count = JOB_BLOCKS * DEFAULT_BLOCK
    print(f"== precompute job on {count} synthetic receipts (1200x1600 JPEG, 100 words), blocks of {DEFAULT_BLOCK}")
    with tempfile.TemporaryDirectory() as scratch:
        folder, annotations = write_receipts(Path(scratch), count)
        every = [parse_entry(name, entry) for name, entry in read_ufo(annotations).items()]
        keep_freed_memory(StoreSettings().block_bytes)  # the floor's process, as --jobs 1 does

        def decode_and(compute: Callable, sample: list) -> Callable:
            def each_image() -> None:
                for annotation in sample:  # kept, the maps of 224 images took 900 MB, 5 % of the time
                    load_sample(folder, annotation, 640).targets(TargetConfig(), compute)

            return each_image

        baseline = images / best_seconds(decode_and(reference_targets, every[:images]))
        stores = iter(range(1000))

        def job(options: dict) -> Callable:
            def into_a_new_store() -> None:
                out = Path(scratch) / f"{next(stores)}.zarr"
                run(Job(folder, annotations, out, progress=False, **options))

            return into_a_new_store

        floor_label = "floor: decode + fast path, 1 core, no writes"
        runs = {floor_label: decode_and(compute_targets, every)}
        runs |= {f"precompute --jobs {jobs}": job({"jobs": jobs}) for jobs in (1, 2)}
        seconds = best_interleaved(runs, passes=4)  # the floor among the runs: all see the same machine
        # the clusters apart, after: the exit of a cluster's processes disturbed the run after it
        clusters = {f"precompute --dask local:{n} (cluster start included)": {"dask": f"local:{n}"} for n in (1, 2)}
        seconds |= best_interleaved({label: job(options) for label, options in clusters.items()}, 2, warm_up=False)
        floor = count / seconds[floor_label]
        print(f"{'run':<51}{'images/s':>10}{'vs on the fly':>15}{'vs floor':>10}")
        print(f"{f'on the fly (decode + reference, {images} images)':<51}{baseline:>10.1f}{1.0:>14.1f}x"
              f"{baseline / floor:>9.2f}x")  # fmt: skip
        for label, elapsed in seconds.items():
            rate = count / elapsed
            print(f"{label:<51}{rate:>10.1f}{rate / baseline:>14.1f}x{rate / floor:>9.2f}x")
        print(
            f"--jobs 2 runs {seconds['precompute --jobs 1'] / seconds['precompute --jobs 2']:.2f}x as fast as --jobs 1"
        )
        first = seconds["precompute --jobs 2"]
        out = Path(scratch) / "last.zarr"
        run(Job(folder, annotations, out, jobs=2, progress=False))
        summary = run(Job(folder, annotations, out, jobs=2, progress=False))
        print(
            f"rerun on unchanged data: {summary.seconds:.2f} s, {summary.seconds / first:.1%} of the first run "
            f"({summary.reused} reused)"
        )
        print(
            f"store: {summary.store_bytes / count / 1024:.0f} KiB per image "
            f"(the four maps uncompressed as float32: {640 * 640 * 4 * 4 / 1024:.0f} KiB)"
        )


def bench_loader(images: int) -> None:
    count = images * 8
    print(f"== train time: reading targets, {count} synthetic receipts")
    with tempfile.TemporaryDirectory() as scratch:
        folder, annotations = write_receipts(Path(scratch), count, seed=1)
        out = Path(scratch) / "targets.zarr"
        run(Job(folder, annotations, out, jobs=2, progress=False, settings=StoreSettings(with_images=True)))
        data = UFODataset(folder, annotations)
        stored = StoreCollate(out, data)
        items = [data[i] for i in range(16)]
        memory = InMemoryCollate(stored.store, [item["index"] for item in items])

        timings = {  # the targets part of the collate; stacking the images is the same for all
            "on the fly (reference collate)": best_seconds(lambda: OnTheFlyCollate().targets(items), passes=2),
            "on the fly (fast path collate)": best_seconds(
                lambda: OnTheFlyCollate(compute=compute_targets).targets(items)
            ),
            **best_interleaved(
                {
                    "store (StoreCollate)": lambda: stored.targets(items),
                    "uncompressed memory": lambda: memory.targets(items),
                },
                passes=9,
            ),
        }
        reference = timings["on the fly (reference collate)"]
        print(f"{'targets of a batch of 16':<36}{'ms':>9}{'vs on the fly':>15}{'vs memory':>11}")
        for label, seconds in timings.items():
            print(
                f"{label:<36}{seconds * 1e3:>9.1f}{reference / seconds:>14.1f}x"
                f"{seconds / timings['uncompressed memory']:>10.1f}x"
            )

        print(f"{'one epoch, DataLoader(2 workers), batch 16':<52}{'s':>7}{'vs on the fly':>15}")
        ways = {
            "on the fly (UFODataset + reference collate)": (data, OnTheFlyCollate()),
            "store (UFODataset + StoreCollate)": (data, stored),
            "store with images (StoreDataset + StoreCollate)": (StoreDataset(out), stored),
        }
        ways["floor: ship empty batches of that format"] = (EmptyItems(count), ShipOnly())
        loaders = {
            label: torch.utils.data.DataLoader(
                dataset, batch_size=16, num_workers=2, collate_fn=collate, persistent_workers=True
            )
            for label, (dataset, collate) in ways.items()
        }
        loaders["store with images, in the main process (0 workers)"] = torch.utils.data.DataLoader(
            StoreDataset(out), batch_size=16, num_workers=0, collate_fn=stored
        )
        epochs = best_interleaved(
            {label: lambda batches=loader: sum(1 for _ in batches) for label, loader in loaders.items()}, 3
        )
        first = next(iter(epochs.values()))
        for label, seconds in epochs.items():
            print(f"{label:<52}{seconds:>7.2f}{first / seconds:>14.1f}x")
        images, total = Location.of(out / "images").disk_usage(), Location.of(out).disk_usage()
        print(
            f"store: {(total - images) / count / 1024:.0f} KiB per image without images, "
            f"{total / count / 1024:.0f} KiB with them ({images / count / 1024:.0f} KiB of image)"
        )
        settings = settings_digest(stored.store.settings)
        stats, digests = stored.store.image_files()
        checks = best_interleaved(
            {
                "stat": lambda: current_hashes(folder, data.annotations, settings, stats, digests),
                "hash": lambda: current_hashes(folder, data.annotations, settings, np.zeros_like(stats), digests),
            },
            passes=3,
        )
        stat, full = checks["stat"] / count, checks["hash"] / count
        print(
            f"staleness check per image: {stat * 1e6:.0f} us with size + mtime, {full * 1e6:.0f} us hashing the file "
            f"({full / stat:.0f}x); for 1,000,000 images {stat * 1e6 / 60:.1f} vs {full * 1e6 / 60:.1f} min"
        )
        photos = Path(scratch) / "photos.zarr"
        with_images = StoreSettings(with_images=True)
        run(Job(DATA / "images", DATA / "annotations.json", photos, jobs=2, progress=False, settings=with_images))
        photo_bytes = Location.of(photos / "images").disk_usage()
        print(f"stored images of the bundled photos: {photo_bytes / 12 / 1024:.0f} KiB per image")


class InMemoryCollate(_Collate if torch else object):
    """The floor for a store read: the stored bytes (uint8 binary maps, float32 threshold
    map), already decompressed in memory, converted into the batch the same way."""

    def __init__(self, store, indices: list[int]) -> None:
        super().__init__()
        self.stored = {}
        for index in indices:
            maps = store.read_maps(index)
            binary = np.stack([maps["prob_map"].astype(np.uint8), maps["prob_mask"], maps["thresh_mask"]])
            self.stored[index] = (binary, maps["thresh_map"])

    def fill(self, batch: list[dict], out: list[dict[str, np.ndarray]]) -> None:
        for item, maps in zip(batch, out, strict=True):
            binary, thresh = self.stored[item["index"]]
            for channel, name in enumerate(("prob_map", "prob_mask", "thresh_mask")):
                np.copyto(maps[name], binary[channel])
            np.copyto(maps["thresh_map"], thresh)


class EmptyItems(torch.utils.data.Dataset if torch else object):
    """Items of the right shape and nothing in them: what a DataLoader costs with no work at all."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        return {"image": torch.empty(3, 640, 640), "image_filename": str(index), "inverse_matrix": None, "polygons": []}


class ShipOnly(_Collate if torch else object):
    """Allocates the batch tensors (in shared memory in a worker, as every collate here does) and fills
    them with zeros: the floor of moving the baseline's batch format from workers to the loop."""

    def fill(self, batch: list[dict], out: list[dict[str, np.ndarray]]) -> None:
        for maps in out:
            for array in maps.values():
                array.fill(0)


def bench_scale() -> None:
    """Objects per image on S3, and a store laid out for 1,000,000 images."""
    from .scale import million_entries, on_s3

    print("== scale")
    with tempfile.TemporaryDirectory() as scratch:
        folder, annotations = write_receipts(Path(scratch), 64, seed=2)
        for line in on_s3(folder, annotations):
            print(line)
        for line in million_entries(folder, annotations, Path(scratch) / "million.zarr"):
            print(line)


SECTIONS = {"maps": bench_maps, "job": bench_job, "loader": bench_loader, "scale": lambda images: bench_scale()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("sections", nargs="*", choices=[*SECTIONS, []], help="sections to run (default: all)")
    parser.add_argument(
        "--images", type=int, default=20, help="synthetic receipts per section (default: 20; the job's: 8 blocks of 64)"
    )
    args = parser.parse_args()
    for name in args.sections or SECTIONS:
        if name == "loader" and torch is None:
            print("== train time: skipped, PyTorch is not installed (pip install 'ocr-targets[torch]')\n")
            continue
        SECTIONS[name](args.images)
        print()


if __name__ == "__main__":
    main()
