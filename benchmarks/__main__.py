"""`make bench`: the fast paths against the on-the-fly path, side by side, in one run.

Timings are the best of a few passes (the least disturbed by other work on a shared
machine); each section prints its ratios against the on-the-fly cost.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ocr_targets import compute_targets, reference_targets
from ocr_targets.allocator import keep_freed_memory
from ocr_targets.hashing import settings_digest
from ocr_targets.images import load_sample
from ocr_targets.location import Location
from ocr_targets.staleness import current_hashes
from ocr_targets.store import DEFAULT_BLOCK, StoreSettings
from ocr_targets.ufo import parse_entry, read_ufo
from precompute import workers
from precompute.job import Job, run

try:
    import torch

    from ocr_targets.collate import OnTheFlyCollate, StoreCollate, _Collate
    from ocr_targets.dataset import StoreDataset, UFODataset, expand_batch
except ImportError:  # the loader section needs the torch extra
    torch = None

from .floor import floor_work
from .synthetic import receipt_polygons, write_photos, write_receipts
from .timing import best_interleaved, best_seconds

DATA = Path(__file__).resolve().parent.parent / "data"
# The job section's images: sizes no block size divides (a tuning that fits 128 or 512 is no result).
JOB_IMAGES = 1000
SMALL_JOB = 120  # a job of a few blocks: what start-up and the split into tasks cost
SUMMARY: list[tuple[str, str, str]] = []  # (what, now, goal): the table every section adds its rows to


def row(what: str, now: str, goal: str) -> None:
    SUMMARY.append((what, now, goal))


def bundled_scenes(size: int = 640) -> list[tuple[tuple[int, int], list[np.ndarray]]]:
    """The bundled real samples, brought to the validation geometry."""
    scenes = []
    for name, entry in read_ufo(DATA / "annotations.json").items():
        scenes.append(((size, size), load_sample(DATA / "images", parse_entry(name, entry), size).polygons))
    return scenes


def photo_scenes(count: int) -> list[tuple[tuple[int, int], list[np.ndarray]]]:
    """Photographed receipts' words, brought to the validation geometry as the job brings them."""
    with tempfile.TemporaryDirectory() as scratch:
        folder, annotations = write_photos(Path(scratch), count, seed=3)
        entries = read_ufo(annotations)
        return [
            ((640, 640), load_sample(folder, parse_entry(n, e), 640, pixels=False).polygons) for n, e in entries.items()
        ]


def bench_maps(images: int) -> None:
    print("== target maps, one process, one core (ms per image)")
    print(f"{'input':<38}{'on the fly':>12}{'fast path':>12}{'ratio':>9}")
    rng = np.random.default_rng(0)
    receipts = [((640, 640), receipt_polygons(rng)) for _ in range(images)]
    compute_targets(*receipts[0])  # compile (or load) the kernel outside the timing
    for label, scenes in [
        (f"photographed receipts ({images}, 164 words)", photo_scenes(images)),
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
        print(f"{label:<38}{reference * 1e3:>12.2f}{fast * 1e3:>12.2f}{reference / fast:>8.1f}x")
        if label.startswith("photographed"):
            row("targets of one receipt, fast path vs the baseline's algorithm, one core",
                f"{reference / fast:.1f}x ({fast * 1e3:.1f} ms)", ">= 20x")  # fmt: skip


def bench_job(images: int) -> None:
    count = JOB_IMAGES
    print(f"== precompute job on {count} photographed receipts (1280x960 JPEG, 164 words), blocks of {DEFAULT_BLOCK}")
    with tempfile.TemporaryDirectory() as scratch:
        folder, annotations = write_photos(Path(scratch), count)
        every = [parse_entry(name, entry) for name, entry in read_ufo(annotations).items()]
        baseline = images / best_seconds(lambda: floor_work(folder, every[:images], reference_targets))
        stores = iter(range(1000))

        def job(options: dict) -> Callable:
            def into_a_new_store() -> None:
                out = Path(scratch) / f"{next(stores)}.zarr"
                run(Job(folder, annotations, out, progress=False, **options))

            return into_a_new_store

        floor_label = "floor: decode + fast path, 1 core, no writes"
        pair_label = "the same floor on 2 processes, half each"
        with ProcessPoolExecutor(2, mp_context=workers.context()) as pair:
            list(pair.map(floor_work, [folder] * 2, [every[:2], every[2:4]]))  # both started and loaded, untimed
            runs = {
                floor_label: lambda: floor_work(folder, every),
                pair_label: lambda: list(pair.map(floor_work, [folder] * 2, [every[::2], every[1::2]])),
            }
            runs |= {f"precompute --jobs {jobs}": job({"jobs": jobs}) for jobs in (1, 2)}
            seconds = best_interleaved(runs, passes=2)  # the floor among the runs: all see the same machine
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
        twice = seconds["precompute --jobs 1"] / seconds["precompute --jobs 2"]
        ceiling = seconds[floor_label] / seconds[pair_label]
        print(f"--jobs 2 runs {twice:.2f}x as fast as --jobs 1; the floor's own work runs {ceiling:.2f}x as fast on 2")
        small = Path(scratch) / "small.json"
        document = json.loads(annotations.read_text())
        document["images"] = dict(list(document["images"].items())[:SMALL_JOB])
        small.write_text(json.dumps(document))

        def small_job(jobs: int) -> Callable:
            return lambda: run(Job(folder, small, Path(scratch) / f"{next(stores)}.zarr", jobs=jobs, progress=False))

        few = best_interleaved({jobs: small_job(jobs) for jobs in (1, 2)}, passes=3)
        print(f"on {SMALL_JOB} images: --jobs 2 runs {few[1] / few[2]:.2f}x as fast as --jobs 1")

        arguments = ["--images", str(folder), "--annotations", str(small), "--jobs"]
        commands = {jobs: precompute_command(Path(scratch), *arguments, str(jobs)) for jobs in (1, 2)}
        cold = best_interleaved(commands, passes=3)  # a fresh process each, as a user runs it
        print(
            f"on {SMALL_JOB} images as a command (a fresh process each, start-up included): --jobs 2 runs "
            f"{cold[1] / cold[2]:.2f}x as fast as --jobs 1 ({cold[2]:.2f} s against {cold[1]:.2f})"
        )
        jobs_1 = count / seconds["precompute --jobs 1"]
        row("the job at --jobs 1 vs its floor (decode + resize + fast targets, one process)",
            f"{jobs_1 / floor:.2f} ({jobs_1:.1f} img/s on {count} images)", ">= 0.85")  # fmt: skip
        row("--jobs 2 vs --jobs 1", f"{twice:.2f}x on {count} images, {few[1] / few[2]:.2f}x on {SMALL_JOB} "
            f"({cold[1] / cold[2]:.2f}x as a command)", ">= 1.8x on both")  # fmt: skip
        row("the floor's work on 2 processes vs 1 (what 2 cores give here, no writes)", f"{ceiling:.2f}x", "-")
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
        start, help_only = start_up(Path(scratch))
        print(
            f"start-up: `ocr-targets precompute` on the 12 bundled images {start:.2f} s wall, "
            f"`--help` {help_only:.2f} s"
        )
        row("start-up: `ocr-targets precompute` on the 12 bundled images, wall",
            f"{start:.2f} s, of which --help alone {help_only:.2f} s", "<= 0.8 s (--help <= 0.25 s)")  # fmt: skip


def precompute_command(scratch: Path, *arguments: str) -> Callable[[], None]:
    """``ocr-targets precompute ARGUMENTS`` in a process of its own, into a new store in ``scratch``
    at each call: the command as a user runs it, start-up included."""
    command = [sys.executable, "-m", "precompute", "precompute", *arguments, "--quiet"]

    def into_a_new_store() -> None:
        out = Path(tempfile.mkdtemp(dir=scratch)) / "store.zarr"
        subprocess.run([*command, "--out", str(out)], check=True, capture_output=True)

    return into_a_new_store


def start_up(scratch: Path) -> tuple[float, float]:
    """Wall time of the command on the bundled sample into a new store, and of ``--help``: best of 3."""
    sample = ["--images", str(DATA / "images"), "--annotations", str(DATA / "annotations.json")]
    help_only = [sys.executable, "-m", "precompute", "--help"]
    timings = best_interleaved(
        {
            "precompute": precompute_command(scratch, *sample),
            "help": lambda: subprocess.run(help_only, check=True, capture_output=True),
        },
        passes=3,
    )
    return timings["precompute"], timings["help"]


def bench_loader(images: int) -> None:
    count = images * 8
    print(f"== train time: reading targets, {count} photographed receipts (1080x2340 JPEG, 164 words)")
    with tempfile.TemporaryDirectory() as scratch:
        folder, annotations = write_photos(Path(scratch), count, seed=1, shape=(2340, 1080), quality=85)
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
        augmented = [{**item, "polygons": [np.asarray(p) + 2 for p in item["polygons"]]} for item in items]
        trainer = StoreCollate(out, data)  # its own counts: it warns, as it should, that it computes these
        logging.getLogger("ocr_targets.collate").setLevel(logging.ERROR)
        whole = {
            "baseline collate, stored items": lambda: OnTheFlyCollate()(items),
            "StoreCollate, stored items": lambda: stored(items),
            "baseline collate, augmented items": lambda: OnTheFlyCollate()(augmented),
            "StoreCollate, augmented items (fast path)": lambda: trainer(augmented),
        }
        calls = best_interleaved(whole, passes=3)
        print(f"{'a whole collate call, batch of 16 (images stacked too)':<56}{'ms':>9}")
        for label, seconds in calls.items():
            print(f"{label:<56}{seconds * 1e3:>9.1f}")
        served = calls["baseline collate, stored items"] / calls["StoreCollate, stored items"]
        trained = calls["baseline collate, augmented items"] / calls["StoreCollate, augmented items (fast path)"]
        row("a batch of 16 through StoreCollate vs the baseline's collate, whole call",
            f"{served:.1f}x ({calls['StoreCollate, stored items'] * 1e3:.0f} ms vs "
            f"{calls['baseline collate, stored items'] * 1e3:.0f} ms)", ">= 20x")  # fmt: skip
        row("training batches (augmented, the fast path) vs the baseline's collate, whole call",
            f"{trained:.1f}x ({calls['StoreCollate, augmented items (fast path)']:.2f} s vs "
            f"{calls['baseline collate, augmented items']:.2f} s per 16)", ">= 12x")  # fmt: skip

        batch = 12
        print(
            f"{f'one epoch, DataLoader(2 persistent workers unless said), batch {batch}':<72}{'s':>7}"
            f"{'vs on the fly':>15}"
        )
        ways = {
            "on the fly (UFODataset + reference collate)": (data, OnTheFlyCollate()),
            "store (UFODataset + StoreCollate)": (data, stored),
            "store with images (StoreDataset + StoreCollate)": (StoreDataset(out), stored),
        }
        ways["floor: ship empty batches of that format"] = (EmptyItems(count), ShipOnly())
        loaders = {
            label: torch.utils.data.DataLoader(
                dataset, batch_size=batch, num_workers=2, collate_fn=collate, persistent_workers=True
            )
            for label, (dataset, collate) in ways.items()
        }
        route = "the YAML route: StoreDataset + StoreCollate, whole batches, 0 workers"
        loaders[route] = torch.utils.data.DataLoader(
            StoreDataset(out), batch_size=batch, num_workers=0, collate_fn=stored
        )
        compact = torch.utils.data.DataLoader(
            StoreDataset(out, compact=True), batch_size=batch, num_workers=2, persistent_workers=True,
            collate_fn=StoreCollate(out, data, compact=True),
        )  # fmt: skip
        epochs = best_interleaved(
            {
                **{label: lambda batches=loader: sum(1 for _ in batches) for label, loader in loaders.items()},
                "compact store with images, expanded in the main process": lambda: sum(
                    expand_batch(b) is not None for b in compact
                ),
            },
            3,
        )
        first = next(iter(epochs.values()))
        for label, seconds in epochs.items():
            print(f"{label:<72}{seconds:>7.2f}{first / seconds:>14.1f}x")
        with_images = epochs["store with images (StoreDataset + StoreCollate)"]
        small = epochs["compact store with images, expanded in the main process"]
        row(f"a validation epoch, batch {batch}: the YAML route (0 workers) vs on the fly (2 workers), its equivalent",
            f"{first / epochs[route]:.1f}x ({epochs[route]:.2f} s for {count} images)", ">= 8x")  # fmt: skip
        row(f"a validation epoch, batch {batch}, 2 persistent workers, StoreDataset + StoreCollate vs the baseline's",
            f"{first / with_images:.1f}x; compact {first / small:.1f}x (the empty-batch floor: "
            f"{first / epochs['floor: ship empty batches of that format']:.1f}x)", ">= 8x")  # fmt: skip

        store = stored.store
        entry = best_seconds(lambda: [store[i] for i in range(16)], passes=5) / 16
        maps = best_seconds(lambda: [store.read_maps(i) for i in range(16)], passes=5) / 16
        print(
            f"store[i], one entry, all arrays (image included): {entry * 1e3:.2f} ms; "
            f"its maps alone {maps * 1e3:.2f} ms"
        )
        row(
            "store[i], one entry, all arrays", f"{entry * 1e3:.2f} ms (its maps alone {maps * 1e3:.2f} ms)", "<= 1.5 ms"
        )
        made = best_interleaved(
            {
                "recorded": lambda: StoreCollate(out),
                "dataset": lambda: StoreCollate(out, data),
                "unchecked": lambda: StoreCollate(out, check=False).store.arrays,  # opened, as a check opens them
            },
            passes=3,
        )
        per_image = (made["recorded"] - made["unchecked"]) / count
        print(
            f"StoreCollate made, {count} images: {made['recorded'] * 1e3:.1f} ms from the recorded sources, "
            f"{made['dataset'] * 1e3:.1f} ms given the dataset, {made['unchecked'] * 1e3:.1f} ms unchecked (opening "
            f"the store and its arrays): the check costs {per_image * 1e6:.0f} us per image"
        )
        opening = f"plus {made['unchecked'] * 1e3:.0f} ms to open the store"
        row(
            "StoreCollate(store) made (its staleness check), per image",
            f"{per_image * 1e6:.0f} us, {opening}",
            "<= 50 us",
        )
        images_bytes, total = Location.of(out / "images").disk_usage(), Location.of(out).disk_usage()
        print(
            f"store: {(total - images_bytes) / count / 1024:.0f} KiB per image without images, "
            f"{total / count / 1024:.0f} KiB with them ({images_bytes / count / 1024:.0f} KiB of image)"
        )
        settings = settings_digest(stored.store.settings)
        stats, digests = stored.store.image_files()
        checks = best_interleaved(
            {
                "stat": lambda: current_hashes(data.sources, data.annotations, settings, stats, digests),
                "hash": lambda: current_hashes(data.sources, data.annotations, settings, np.zeros_like(stats), digests),
            },
            passes=3,
        )
        stat, full = checks["stat"] / count, checks["hash"] / count
        print(
            f"content hashes per image (an annotation file changed): {stat * 1e6:.0f} us with size + mtime, "
            f"{full * 1e6:.0f} us hashing the file ({full / stat:.0f}x)"
        )


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


def bench_baseline(checkout: Path, python: Path) -> None:
    """The baseline's own loaders through its own configs, with and without the README's YAML
    blocks: in its pinned environment, a process of its own (benchmarks/baseline.py)."""
    print(f"== the competition baseline's own OCRDataPLModule ({checkout}), {python}")
    with tempfile.TemporaryDirectory() as scratch:
        figures = Path(scratch) / "figures.json"
        command = [str(python), "-m", "benchmarks.baseline", str(checkout), "epochs", "--json", str(figures)]
        done = subprocess.run(command, cwd=Path(__file__).resolve().parent.parent, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:  # its warnings are noise; its last lines say why it failed
            why = "\n".join(done.stderr.splitlines()[-5:])
            raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}):\n{why}")
        result = json.loads(figures.read_text())
    photos = f"{result['images']} photos of {' and '.join(result['shapes'])}"
    row(f"the baseline's validation epoch ({photos}, batch 12, 2 workers) vs the README's YAML route",
        f"{result['val']:.1f}x ({result['val_seconds']:.2f} s)", ">= 8x")  # fmt: skip
    row("the baseline's training epoch (augmented, 2 workers) vs the same through the route's collate",
        f"{result['train']:.2f}x", "reported")  # fmt: skip


def bench_stacks_section(images: int) -> None:
    from .stacks import bench_stacks  # the stacks' released code: shapely, paddleocr and python-doctr

    for summary_row in bench_stacks(images):
        row(*summary_row)


SECTIONS = {
    "maps": bench_maps,
    "stacks": bench_stacks_section,
    "job": bench_job,
    "loader": bench_loader,
    "scale": lambda images: bench_scale(),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("sections", nargs="*", choices=[*SECTIONS, []], help="sections to run (default: all)")
    parser.add_argument(
        "--images", type=int, default=20, help="synthetic receipts per section (default: 20; the job's: 8 blocks of 64)"
    )
    parser.add_argument(
        "--baseline", type=Path, metavar="CHECKOUT",
        help="a checkout of the competition baseline: also time its own loaders with and without the YAML route",
    )  # fmt: skip
    parser.add_argument(
        "--baseline-python", type=Path, default=Path(".venv-baseline/bin/python"),
        help="the Python of an environment with the baseline's pins (make baseline-env; default: %(default)s)",
    )  # fmt: skip
    args = parser.parse_args()
    # Every section in a process that keeps the memory it frees, as the job's processes do: on a
    # VM a fresh page can cost far more after a memory-heavy section (measured here: the fast path
    # 3.2 ms a receipt, 4.5 ms right after the baseline section untuned), and the bench times code.
    keep_freed_memory(StoreSettings().block_bytes)
    if args.baseline:
        bench_baseline(args.baseline, args.baseline_python)
        print()
    for name in args.sections or SECTIONS:
        if name == "loader" and torch is None:
            print("== train time: skipped, PyTorch is not installed (pip install 'ocr-targets[torch]')\n")
            continue
        SECTIONS[name](args.images)
        print()
    if SUMMARY:
        width = max(len(what) for what, _, _ in SUMMARY)
        print(f"== summary\n{'what':<{width}}  {'now':<44}goal")
        for what, now, goal in SUMMARY:
            print(f"{what:<{width}}  {now:<44}{goal}")


if __name__ == "__main__":
    main()
