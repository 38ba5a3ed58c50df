"""The ``ocr-targets`` command line. Building it imports no numpy, numba, OpenCV or zarr: each
command imports what it uses when it runs, so that ``--help`` answers at once."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocr_targets import __version__
from ocr_targets.choices import DEFAULT_BLOCK, DEFAULT_SIZE, NO_PAD, PAD_MODES, THRESH_DTYPES, thresh_tolerance
from ocr_targets.config import TargetConfig
from ocr_targets.stacks import BASELINE, STORED, stack

from .errors import CommandError, StopCause, Terminated
from .text import say

if TYPE_CHECKING:
    from ocr_targets.location import Location

    from .job import Job, Stopped

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
            "the annotation file, at the validation geometry of --stack (the baseline's: longest side to --size, "
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
        help='UFO json, a path or URL: {"images": {name: {"words": {id: {"points"}}}}}; or docTR\'s labels.json: '
        '{name: {"polygons": [[[x, y], ...], ...]}}',
    )
    precompute.add_argument(
        "--out",
        required=True,
        metavar="STORE.zarr",
        help="the store to create or update: a directory, or a URL (s3://bucket/prefix/val.zarr, gs://..., file://...)",
    )
    precompute.add_argument("--jobs", type=_jobs, metavar="N", help=JOBS_HELP)
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
        type=_at_least(1),
        default=DEFAULT_BLOCK,
        metavar="K",
        help=f"images per block (default: {DEFAULT_BLOCK}): a block is one object per array and one task, so a "
        "store of N images is about 13 N / K objects; a rerun rewrites only the blocks that hold a changed "
        "image. A worker holds its block's maps: about 700 MB a process at 64. Fixed when the store is made",
    )
    precompute.add_argument(
        "--stack",
        choices=STORED,
        help=f"the training stack whose validation transform and targets the store holds (default: {BASELINE}, "
        f"the competition baseline's; {PADDLE} with --paddle-config). Fixed when the store is made",
    )
    precompute.add_argument(
        "--paddle-config",
        metavar="CONFIG.yml[:SECTION]",
        help=f"a PaddleOCR det config whose SECTION (default: Train) dataset.transforms the store is made after, "
        f"for --stack {PADDLE}: DecodeImage, DetLabelEncode, Resize: {{size: [S, S]}} in place of the random ops, "
        "MakeBorderMap, MakeShrinkMap; the size and DB parameters are its ops'. A random op (IaaAugment, "
        "EastRandomCropData, ...) or one ocr-targets does not reproduce before the target ops is refused, "
        f"nothing written. Without it, --stack {PADDLE} is PaddleOCR's defaults and Resize to --size",
    )
    precompute.add_argument(
        "--size",
        type=_at_least(32),
        metavar="PX",
        help=f"side of the square targets, at least 32 (default: {DEFAULT_SIZE}, the baseline's); it must be the "
        "size the training dataset resizes to, which StoreCollate checks",
    )
    precompute.add_argument(
        "--pad",
        choices=(*PAD_MODES, NO_PAD),
        help="where the resized image sits in the square: center (the default, albumentations' PadIfNeeded "
        f"as the baseline's config uses it) or top-left (PadIfNeeded's position top_left, which later commits of "
        f"the baseline's config use); {NO_PAD} for --stack {PADDLE} "
        "(its Resize stretches the image to the square), its default",
    )
    precompute.add_argument(
        "--shrink-ratio",
        type=_between(0, 1, open=True),
        metavar="X",
        help=f"DB shrink ratio r, between 0 and 1 (default: {DEFAULTS.shrink_ratio})",
    )
    precompute.add_argument(
        "--thresh-min",
        type=_between(0, 1),
        metavar="X",
        help=f"threshold map floor, 0 to 1 and below --thresh-max (default: {DEFAULTS.thresh_min})",
    )
    precompute.add_argument(
        "--thresh-max", type=_between(0, 1), metavar="X",
        help=f"threshold map ceiling, 0 to 1 (default: {DEFAULTS.thresh_max})",
    )  # fmt: skip
    precompute.add_argument("--thresh-dtype", choices=THRESH_DTYPES, default=THRESH_DTYPES[0], help=THRESH_HELP)
    precompute.add_argument(
        "--with-images",
        action="store_true",
        help="also store each image as the validation transform leaves it (--size by --size RGB uint8, before "
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
        "machine is noticed without it); refused while its holder runs on this machine",
    )
    _storage_option(precompute)
    precompute.add_argument("--quiet", action="store_true", help="no progress bars")
    precompute.set_defaults(run=run_precompute, usage=precompute)

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
        "--annotations",
        metavar="FILE.json",
        help="UFO json or docTR labels, path or URL (default: the one recorded in the store)",
    )
    _storage_option(check)
    check.add_argument("--sample", type=_at_least(1), metavar="K", help="check a random K entries instead of all")
    check.add_argument("--seed", type=int, help="seed of --sample (default: random, printed); only with --sample")
    check.add_argument("--jobs", type=_jobs, metavar="N", help=JOBS_HELP.split(". Not with --dask")[0])
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(run=run_verify, usage=check)

    describe = commands.add_parser(
        "info",
        help="what a store holds and how it was made",
        description="Print what a store holds (entries done, shifted, size on disk), how it was made (parameters, "
        "geometry, threshold dtype, block, versions, sources), its arrays, and whether a job is writing it now.",
    )
    describe.add_argument("store", help=STORE_HELP)
    _storage_option(describe)
    describe.set_defaults(run=run_info)

    picture = commands.add_parser(
        "show",
        help="draw one image's targets to a PNG",
        description="Write a PNG of four panels at the target geometry, so that a person can see the targets are "
        "right: the image with its words (green), ignored words (orange: illegible or ###) and shrunk polygons "
        "(red); the probability map, with the pixels out of its mask red; the threshold map; the threshold "
        "mask.",
    )
    picture.add_argument("store", help=STORE_HELP)
    picture.add_argument("image", help="the image's file name, as in the annotation file, or an entry's index")
    picture.add_argument("--out", type=Path, required=True, metavar="FILE.png", help="the PNG to write")
    picture.add_argument(
        "--images", metavar="DIR", help="image directory or URL (default: the one recorded in the store)"
    )
    _storage_option(picture)
    picture.set_defaults(run=run_show)
    return parser


DEFAULTS = TargetConfig()  # the DB parameters' defaults, the baseline's (and PaddleOCR's)
PADDLE = "paddleocr"
JOBS_HELP = (
    "worker processes: N >= 1, or -1 for one per core (the default); more than the cores only adds switching, "
    "so it is lowered to the core count. Not with --dask, whose workers are the cluster's"
)


def _at_least(low: int):
    def number(text: str) -> int:
        value = _parsed(int, text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return number


def _between(low: float, high: float, open: bool = False):
    def number(text: str) -> float:
        value = _parsed(float, text)
        inside = low < value < high if open else low <= value <= high
        if not inside:
            bounds = f"between {low} and {high}, both excluded" if open else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must lie {bounds}, got {value}")
        return value

    return number


def _jobs(text: str) -> int:
    value = _parsed(int, text)
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"must be a number of processes >= 1, or -1 for one per core; got {value}")
    return value


def _parsed(kind: type, text: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _key_value(text: str) -> str:
    key, sep, _ = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return text


def _processes(jobs: int | None) -> int:
    """--jobs as joblib takes it: at most one process per core, said when lowered."""
    cores = os.cpu_count() or 1
    if jobs is None or jobs == -1:
        return -1
    if jobs > cores:
        print(f"note: --jobs {jobs} lowered to {cores}, the cores of this machine", file=sys.stderr)
        return cores
    return jobs


STORE_HELP = "the store: a directory (STORE.zarr) or a URL (s3://bucket/prefix/val.zarr)"


def _storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage-option",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an fsspec storage option for every URL (repeatable), e.g. endpoint_url=http://127.0.0.1:9000, "
        "anon=true, profile=NAME, client_kwargs.region_name=eu-west-1. Credentials and endpoint otherwise come "
        "from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...)",
    )


def _store(args: argparse.Namespace) -> Location:
    from ocr_targets.location import Location, parse_storage_options

    return Location.of(args.store, parse_storage_options(args.storage_option))


def run_info(args: argparse.Namespace) -> int:
    from . import info

    say(info.info(_store(args)))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ocr_targets.location import Location

    from . import verify

    store = _store(args)
    report = verify.verify(
        store,
        args.images and Location.of(args.images, store.options),
        args.annotations and Location.of(args.annotations, store.options),
        args.sample,
        args.seed,
        _processes(args.jobs),
        progress=not args.quiet,
    )
    say(report.lines())
    return 0 if report.ok else 1


def run_show(args: argparse.Namespace) -> int:
    from ocr_targets.location import Location

    from . import show

    store = _store(args)
    index, name = show.show(store, args.image, args.out, args.images and Location.of(args.images, store.options))
    say(f"wrote {args.out}: entry {index}, {name}")
    return 0


def run_precompute(args: argparse.Namespace) -> int:
    from . import workers

    if not args.dask and args.jobs != 1:
        workers.start()  # the workers' server imports while this process does
    from ocr_targets.location import Location, parse_storage_options
    from ocr_targets.store import StoreSettings

    from . import job, memory

    size, config, stack_options = args.size, TargetConfig(args.shrink_ratio, args.thresh_min, args.thresh_max), {}
    if args.paddle_config:  # before anything is written: a config a store cannot follow stops here
        from ocr_targets.stacks.paddle_config import read_paddle_config

        paddle = read_paddle_config(args.paddle_config)
        size, config, stack_options = paddle.size, paddle.targets, paddle.stack_options
    options = parse_storage_options(args.storage_option)
    images = Location.of(args.images, options)
    if not images.exists():
        raise CommandError(f"{images}: --images does not exist")
    if not images.is_dir():
        raise CommandError(f"{images}: --images is not a directory")
    settings = StoreSettings(
        stack=args.stack,
        config=config,
        size=size,
        pad=args.pad,
        stack_options=stack_options,
        thresh_dtype=args.thresh_dtype,
        with_images=args.with_images,
        block=args.block,
    )
    jobs = _processes(args.jobs)
    if not args.dask:  # a cluster's workers have memories of their own
        available = memory.available_memory()
        if available is not None:  # before anything is written: the most processes a run starts
            memory.require_fits(settings, job.processes(jobs, 10**9), available)
    work = job.Job(
        images=images,
        annotations=Location.of(args.annotations, options),
        out=Location.of(args.out, options),
        settings=settings,
        recheck=args.recheck,
        dask=args.dask,
        jobs=jobs,
        storage_options=options,
        overwrite=args.overwrite,
        break_lock=args.break_lock,
        progress=not args.quiet,
    )
    try:
        summary = job.run(work)
    except job.Stopped as stopped:
        say(stopped.summary.lines())
        return _stopped(work, stopped)
    say(summary.lines())
    if summary.report_error:
        say(summary.report_error, file=sys.stderr)
    elif summary.failures:
        say(f"failure report: {work.report}")
    return 1 if summary.failures else 0


# The exit status of a run that stopped early, by its cause (the shell's for a signal: 128 + its number).
STOP_STATUS = {StopCause.INTERRUPTED: 130, StopCause.TERMINATED: 143, StopCause.DISK_FULL: 2, StopCause.STORAGE: 2}


def _stopped(work: Job, stopped: Stopped) -> int:
    """What a run that stopped early says on stderr, and its exit status, both by its cause."""
    done = f"{stopped.finished} of {stopped.summary.images} images are done"
    cause = stopped.stop.cause
    if cause is StopCause.DISK_FULL:
        print(
            f"ocr-targets precompute: error: the disk holding {work.out} is full: {done}; "
            "free some space and rerun the same command to finish the job",
            file=sys.stderr,
        )
    elif cause is StopCause.STORAGE:
        say(
            f"ocr-targets precompute: error: {stopped.stop.detail}: {done}; rerun the same command to finish the job "
            "once the storage answers again",
            file=sys.stderr,
        )
    else:
        print(f"ocr-targets precompute: {cause.value}: {done}; rerun the same command to finish", file=sys.stderr)
    return STOP_STATUS[cause]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "precompute":
        settle(args)
    if args.command == "precompute" and args.thresh_min >= args.thresh_max:
        args.usage.error(f"--thresh-min {args.thresh_min} must be below --thresh-max {args.thresh_max}")
    if args.command == "precompute" and args.pad not in stack(args.stack).pads:
        args.usage.error(f"--stack {args.stack} pads {' or '.join(stack(args.stack).pads)}, not --pad {args.pad}")
    if args.command == "precompute" and args.dask and args.jobs is not None:
        args.usage.error("--jobs has no effect with --dask: the cluster's workers are the job's processes")
    if args.command == "verify" and args.seed is not None and args.sample is None:
        args.usage.error("--seed chooses the entries of --sample; give --sample K too")
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except Exception as error:  # the command's own errors, imported with it: said in one line
        return _failed(args, error)
    except KeyboardInterrupt as interrupt:
        cause = StopCause.of(interrupt)
        print(f"ocr-targets {args.command}: {cause.value}", file=sys.stderr)
        return STOP_STATUS[cause]
    finally:
        signal.signal(signal.SIGTERM, previous)


def settle(args: argparse.Namespace) -> None:
    """The stack's own defaults where not given; a PaddleOCR config's values are read when the command runs."""
    if args.paddle_config:
        if args.stack not in (None, PADDLE):
            args.usage.error(f"--paddle-config makes a store for --stack {PADDLE}, not --stack {args.stack}")
        given = [
            flag for flag in ("size", "shrink_ratio", "thresh_min", "thresh_max") if getattr(args, flag) is not None
        ]
        if given:
            flags = ", ".join("--" + flag.replace("_", "-") for flag in given)
            args.usage.error(f"{flags}: the config's Resize and target ops say them; give them there")
        args.stack = PADDLE
    args.stack = args.stack or BASELINE
    args.pad = args.pad or stack(args.stack).pads[0]
    args.size = args.size or DEFAULT_SIZE
    for name, value in DEFAULTS.to_dict().items():
        setattr(args, name, value if getattr(args, name) is None else getattr(args, name))


def _failed(args: argparse.Namespace, error: Exception) -> int:
    """Exit status 2 and the error in one line, for a known error; any other is raised."""
    from ocr_targets.errors import InputError
    from ocr_targets.location import STORAGE_ERRORS, Location, parse_storage_options, storage_problem
    from ocr_targets.store import StoreError

    if isinstance(error, (InputError, StoreError, CommandError)):
        say(f"ocr-targets {args.command}: error: {error}", file=sys.stderr)
        return 2
    if isinstance(error, STORAGE_ERRORS):  # a path no check caught, or the S3 client's own: no traceback
        where = getattr(args, "store", None) or getattr(args, "out", None)
        location = Location.of(where, parse_storage_options(args.storage_option)) if isinstance(where, str) else None
        say(f"ocr-targets {args.command}: error: {storage_problem(error, location)}", file=sys.stderr)
        return 2
    raise error


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


if __name__ == "__main__":
    sys.exit(main())
