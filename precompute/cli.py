"""The ``ocr-targets`` command line."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ocr_targets import __version__
from ocr_targets.config import TargetConfig
from ocr_targets.geometry import PAD_MODES
from ocr_targets.images import ImageError
from ocr_targets.location import STORAGE_ERRORS, Location, parse_storage_options, storage_problem
from ocr_targets.store import DEFAULT_BLOCK, THRESH_DTYPES, StoreError, thresh_tolerance
from ocr_targets.ufo import AnnotationError

from . import inspect, verify
from . import job as batch

DESCRIPTION = """\
Precompute DBNet training targets into a zarr store, once, then read them by dataset
index at train time (see ocr_targets.open_store and ocr_targets.collate)."""

THRESH_HELP = "how the threshold map is stored: float32 (lossless, the default), " + ", ".join(
    f"{dtype} (smaller; max error {thresh_tolerance(dtype, TargetConfig()):.1e} with the default parameters)"
    for dtype in THRESH_DTYPES[1:]
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocr-targets", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"ocr-targets {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    precompute = commands.add_parser(
        "precompute",
        help="compute the targets of every image into a store (incremental, resumable)",
        description=(
            "Compute the probability map, threshold map, masks and shrunk polygons of every image in "
            "the annotation file, at the competition's validation geometry (longest side to --size, "
            "zero-padded to a square; see --pad), "
            "and write them to a zarr store keyed by content hash. A rerun recomputes only the images "
            "whose bytes, words or parameters changed (reordered or renamed ones are moved), and "
            "completes an interrupted run. Images that "
            "fail are reported (and listed in STORE.failures.json); the others are still stored. "
            "Ctrl-C or SIGTERM stops it cleanly (every finished image is kept; a rerun finishes the job). "
            "Exit status: 0 all stored, 1 some images failed, 2 nothing (more) could be done: bad input, "
            "a locked store, a full disk; 130 interrupted, 143 terminated."
        ),
    )
    precompute.add_argument(
        "--images",
        required=True,
        metavar="DIR",
        help="folder of the image files (or a URL: s3://bucket/images)",
    )
    precompute.add_argument(
        "--annotations",
        required=True,
        metavar="FILE.json",
        help='UFO json, a path or URL: {"images": {name: {"words": {id: {"points"}}}}}',
    )
    precompute.add_argument(
        "--out",
        required=True,
        metavar="STORE.zarr",
        help="the store to create or update: a directory, or a URL (s3://bucket/prefix/val.zarr, gs://..., file://...)",
    )
    precompute.add_argument("--jobs", type=int, default=-1, metavar="N", help="worker processes (default: all cores)")
    precompute.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on a Dask cluster instead of local processes: a scheduler address (tcp://host:8786), or "
        "local:N for a LocalCluster of N single-threaded workers; the workers read the images and write "
        "their blocks straight into the store, so they must reach both at the same paths or URLs (object "
        "storage, or a shared filesystem). Needs the dask extra",
    )
    precompute.add_argument(
        "--block",
        type=int,
        default=DEFAULT_BLOCK,
        metavar="K",
        help=f"images per block (default: {DEFAULT_BLOCK}): a block is one object per array and one task, so a "
        "store of N images is about 13 N / K objects; a rerun rewrites only the blocks that hold a changed "
        "image. A worker holds its block's maps: about 700 MB a process at 64. Fixed when the store is made",
    )
    precompute.add_argument(
        "--size", type=int, default=640, metavar="PX", help="side of the square targets (default: 640)"
    )
    precompute.add_argument(
        "--pad",
        choices=PAD_MODES,
        default="center",
        help="where the resized image sits in the square: center (the default, albumentations' PadIfNeeded "
        "as the baseline's config uses it) or top-left (its later configuration)",
    )
    precompute.add_argument(
        "--shrink-ratio", type=float, metavar="X", default=0.4, help="DB shrink ratio r (default: 0.4)"
    )
    precompute.add_argument(
        "--thresh-min", type=float, metavar="X", default=0.3, help="threshold map floor (default: 0.3)"
    )
    precompute.add_argument(
        "--thresh-max", type=float, metavar="X", default=0.7, help="threshold map ceiling (default: 0.7)"
    )
    precompute.add_argument("--thresh-dtype", choices=THRESH_DTYPES, default="float32", help=THRESH_HELP)
    precompute.add_argument(
        "--with-images",
        action="store_true",
        help="also store each image as the validation transform leaves it (640x640 RGB uint8, before "
        "Normalize; lossless, Zstd), so that ocr_targets.dataset.StoreDataset serves items with no image "
        "file read and no decoding. Costs about 480 KiB per image on photos (25 KiB on flat synthetic "
        "receipts), on top of about 160 KiB for the targets",
    )
    precompute.add_argument(
        "--overwrite", action="store_true", help="rebuild a store that was made with other parameters"
    )
    precompute.add_argument(
        "--recheck",
        action="store_true",
        help="also read back every entry that would be kept and recompute the ones whose chunks are missing or "
        "fail their checksum (what `verify` reports as corrupt); slower, as it decodes the whole store",
    )
    precompute.add_argument(
        "--break-lock",
        action="store_true",
        help="take the store's lock from a job that is gone (killed on another machine; one killed on this "
        "machine is noticed without it)",
    )
    _storage_option(precompute)
    precompute.add_argument("--quiet", action="store_true", help="no progress bars")
    precompute.set_defaults(run=run_precompute)

    check = commands.add_parser(
        "verify",
        help="recompute entries with the reference path and compare them to the store",
        description=(
            "Recompute the targets of the store's images with the reference (on-the-fly) path and compare: "
            "per image, the largest difference of each map; stale entries (image or words changed since "
            "precompute); entries missing from the store or extra; chunks that cannot be read. Exit 0 only "
            "when everything matches within the stored threshold dtype's stated error."
        ),
    )
    check.add_argument("store", help=STORE_HELP)
    check.add_argument(
        "--images", metavar="DIR", help="image directory or URL (default: the one recorded in the store)"
    )
    check.add_argument(
        "--annotations", metavar="FILE.json", help="UFO json, path or URL (default: the one recorded in the store)"
    )
    _storage_option(check)
    check.add_argument("--sample", type=int, metavar="K", help="check a random K entries instead of all")
    check.add_argument("--seed", type=int, help="seed of --sample (default: random, printed)")
    check.add_argument("--jobs", type=int, default=-1, metavar="N", help="worker processes (default: all cores)")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(run=run_verify)

    describe = commands.add_parser("info", help="what a store holds and how it was made")
    describe.add_argument("store", help=STORE_HELP)
    _storage_option(describe)
    describe.set_defaults(run=lambda args: print("\n".join(inspect.info(_store(args)))) or 0)

    picture = commands.add_parser(
        "show",
        help="draw one image's targets to a PNG",
        description="Write the image with its polygons and shrunk polygons, its probability map and its "
        "threshold map side by side, so that a person can see the targets are right.",
    )
    picture.add_argument("store", help=STORE_HELP)
    picture.add_argument("name", help="the image's file name, as in the annotation file")
    picture.add_argument("--out", type=Path, required=True, metavar="FILE.png", help="the PNG to write")
    picture.add_argument(
        "--images", metavar="DIR", help="image directory or URL (default: the one recorded in the store)"
    )
    _storage_option(picture)
    picture.set_defaults(run=run_show)
    return parser


STORE_HELP = "the store: a directory (STORE.zarr) or a URL (s3://bucket/prefix/val.zarr)"


def _storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an fsspec storage option for every URL (repeatable), e.g. endpoint_url=http://127.0.0.1:9000, "
        "anon=true, profile=NAME, client_kwargs.region_name=eu-west-1. Credentials and endpoint otherwise come "
        "from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...)",
    )


def _store(args: argparse.Namespace) -> Location:
    return Location.of(args.store, parse_storage_options(args.storage_option))


def run_verify(args: argparse.Namespace) -> int:
    if args.sample is not None and args.sample < 1:
        raise ValueError(f"--sample must be at least 1, got {args.sample}")
    store = _store(args)
    report = verify.verify(
        store,
        args.images and Location.of(args.images, store.options),
        args.annotations and Location.of(args.annotations, store.options),
        args.sample,
        args.seed,
        args.jobs,
        progress=not args.quiet,
    )
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def run_show(args: argparse.Namespace) -> int:
    store = _store(args)
    inspect.show(store, args.name, args.out, args.images and Location.of(args.images, store.options))
    print(f"wrote {args.out}")
    return 0


def run_precompute(args: argparse.Namespace) -> int:
    if args.size < 32:
        raise ValueError(f"--size must be at least 32, got {args.size}")
    if args.jobs == 0:
        raise ValueError("--jobs must not be 0 (use -1 for all cores)")
    if args.block < 1:
        raise ValueError(f"--block must be at least 1, got {args.block}")
    options = parse_storage_options(args.storage_option)
    images = Location.of(args.images, options)
    if not images.is_dir():
        raise ValueError(f"{images}: --images is not a directory")
    job = batch.Job(
        images=images,
        annotations=Location.of(args.annotations, options),
        out=Location.of(args.out, options),
        config=TargetConfig(args.shrink_ratio, args.thresh_min, args.thresh_max),
        size=args.size,
        pad=args.pad,
        thresh_dtype=args.thresh_dtype,
        with_images=args.with_images,
        recheck=args.recheck,
        dask=args.dask,
        jobs=args.jobs,
        block=args.block,
        storage_options=options,
        overwrite=args.overwrite,
        break_lock=args.break_lock,
        progress=not args.quiet,
    )
    try:
        summary = batch.run(job)
    except batch.Stopped as stop:
        print("\n".join(stop.summary.lines()))
        done = f"{stop.finished} of {stop.summary.images} images are done"
        if stop.reason == "disk full":
            print(
                f"ocr-targets precompute: error: the disk holding {job.out} is full: {done}; "
                "free some space and rerun the same command to finish the job",
                file=sys.stderr,
            )
            return 2
        if stop.reason in ("interrupted", "terminated"):
            print(f"ocr-targets precompute: {stop.reason}: {done}; rerun the same command to finish", file=sys.stderr)
            return 143 if stop.reason == "terminated" else 130
        print(
            f"ocr-targets precompute: error: {stop.reason}: {done}; rerun the same command to finish the job "
            "once the storage answers again",
            file=sys.stderr,
        )
        return 2
    print("\n".join(summary.lines()))
    if summary.report_error:
        print(summary.report_error, file=sys.stderr)
    elif summary.failures:
        print(f"failure report: {job.report}")
    return 1 if summary.failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except (AnnotationError, ImageError, StoreError, KeyError, ValueError) as error:
        print(f"ocr-targets {args.command}: error: {error}", file=sys.stderr)
        return 2
    except STORAGE_ERRORS as error:  # a path no check caught, or the S3 client's own: no traceback
        print(f"ocr-targets {args.command}: error: {storage_problem(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, batch.Terminated)
        print(f"ocr-targets {args.command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: object) -> None:
    raise batch.Terminated


if __name__ == "__main__":
    sys.exit(main())
