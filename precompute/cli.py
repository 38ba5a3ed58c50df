"""The ``ocr-targets`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ocr_targets import __version__
from ocr_targets.config import TargetConfig
from ocr_targets.store import THRESH_DTYPES, StoreError, thresh_tolerance
from ocr_targets.ufo import AnnotationError

from . import job as batch

DESCRIPTION = """\
Precompute DBNet training targets into a zarr store, once, then read them by dataset
index at train time (see ocr_targets.open_store and ocr_targets.collate)."""

THRESH_HELP = "how the threshold map is stored: " + ", ".join(
    f"{dtype} (max error {thresh_tolerance(dtype, TargetConfig()):.1e})" for dtype in THRESH_DTYPES
) + "; default float32, lossless for practical purposes"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocr-targets", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"ocr-targets {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    precompute = commands.add_parser(
        "precompute",
        help="compute the targets of every image into a store (incremental, resumable)",
        description=(
            "Compute the probability map, threshold map, masks and shrunk polygons of every image in "
            "the annotation file, at the validation geometry (longest side to --size, top-left pad), "
            "and write them to a zarr store keyed by content hash. A rerun recomputes only the images "
            "whose bytes, words or parameters changed, and completes an interrupted run. Images that "
            "fail are reported (and listed in STORE.failures.json); the others are still stored. "
            "Exit status: 0 all stored, 1 some images failed, 2 nothing could be done."
        ),
    )
    precompute.add_argument("--images", type=Path, required=True, help="directory holding the image files")
    precompute.add_argument(
        "--annotations", type=Path, required=True, help='UFO json: {"images": {name: {"words": {id: {"points"}}}}}'
    )
    precompute.add_argument("--out", type=Path, required=True, help="the store to create or update (STORE.zarr)")
    precompute.add_argument("--jobs", type=int, default=-1, help="worker processes (default: all cores)")
    precompute.add_argument("--size", type=int, default=640, help="side of the square targets (default: 640)")
    precompute.add_argument("--shrink-ratio", type=float, default=0.4, help="DB shrink ratio r (default: 0.4)")
    precompute.add_argument("--thresh-min", type=float, default=0.3, help="threshold map floor (default: 0.3)")
    precompute.add_argument("--thresh-max", type=float, default=0.7, help="threshold map ceiling (default: 0.7)")
    precompute.add_argument("--thresh-dtype", choices=THRESH_DTYPES, default="float32", help=THRESH_HELP)
    precompute.add_argument(
        "--overwrite", action="store_true", help="rebuild a store that was made with other parameters"
    )
    precompute.add_argument("--quiet", action="store_true", help="no progress bars")
    precompute.set_defaults(run=run_precompute)
    return parser


def run_precompute(args: argparse.Namespace) -> int:
    if args.size < 32:
        raise ValueError(f"--size must be at least 32, got {args.size}")
    if args.jobs == 0:
        raise ValueError("--jobs must not be 0 (use -1 for all cores)")
    if not args.images.is_dir():
        raise ValueError(f"{args.images}: --images is not a directory")
    job = batch.Job(
        images=args.images,
        annotations=args.annotations,
        out=args.out,
        config=TargetConfig(args.shrink_ratio, args.thresh_min, args.thresh_max),
        size=args.size,
        thresh_dtype=args.thresh_dtype,
        jobs=args.jobs,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    summary = batch.run(job)
    print("\n".join(summary.lines()))
    if summary.failures:
        print(f"failure report: {job.report}")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (AnnotationError, StoreError, ValueError) as error:
        print(f"ocr-targets {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ocr-targets {args.command}: interrupted; rerun to complete the store", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
