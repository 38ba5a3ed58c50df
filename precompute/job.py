"""The precompute job: hash every image, rewrite the blocks that changed in parallel, one task
per block; the client alone marks blocks done."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from joblib import Parallel, delayed
from tqdm import tqdm

from ocr_targets import __version__
from ocr_targets.allocator import keep_freed_memory
from ocr_targets.config import TargetConfig
from ocr_targets.hashing import content_hash, image_digest, settings_digest
from ocr_targets.images import ImageError, load_sample, read_image_bytes
from ocr_targets.location import STORAGE_ERRORS, Location, storage_problem
from ocr_targets.store import (
    DEFAULT_BLOCK,
    STAGING,
    Record,
    StoreError,
    StoreWriter,
    entry_row,
    layout,
    open_arrays,
    open_group,
    read_rows,
    write_block,
)
from ocr_targets.ufo import AnnotationError, ImageAnnotation, parse_entry, read_ufo

from . import cluster


@dataclass(frozen=True)
class Failure:
    """One image that could not be stored, and why."""

    index: int
    image: str
    stage: str  # "annotation", "image" or "targets"
    message: str


@dataclass
class Summary:
    images: int
    computed: int = 0
    reused: int = 0
    moved: int = 0
    shifted: int = 0  # images computed whose words the baseline's keypoint slicing shifted
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (entries recomputed, why)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    store_bytes: int | None = 0
    report_error: str | None = None

    def lines(self) -> list[str]:
        rate = self.computed / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.images} images: {self.computed} computed, {self.reused} reused, {self.moved} moved, "
            f"{len(self.failures)} failed "
            f"in {self.seconds:.1f} s ({rate:.1f} images/s computed); "
            + ("store size unknown" if self.store_bytes is None else f"store {self.store_bytes / 2**20:.1f} MiB")
        ]
        if self.unreadable:
            count = sum(entries for entries, _ in self.unreadable)
            lines.append(
                f"{count} entries were recomputed because their stored objects could not be read "
                f"(the first: {self.unreadable[0][1]})"
            )
        if self.shifted:
            lines.append(
                f"{self.shifted} of the images computed had words shifted by the baseline's keypoint slicing "
                "(a point the resize moved out of the image was dropped), as in training; "
                "`ocr-targets info` counts them"
            )
        lines += [f"  failed: {failure.message}" for failure in self.failures]
        return lines


def _stop_reason(error: BaseException) -> str:
    """Why a storage error stops the run: "disk full" (which Stopped's caller names as such), or the error."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC or "No space left" in str(error):
        return "disk full"
    return storage_problem(error)


class _StorageFailed(Exception):
    """A task could not write its block: the run stops, as for any failure of the store's storage."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``docker stop``), handled as Ctrl-C is."""


class Stopped(Exception):
    """The run stopped before its end (``reason``: interrupted, disk full); every entry it
    finished is marked done, nothing half-written is, and a rerun completes the store."""

    def __init__(self, reason: str, summary: Summary) -> None:
        super().__init__(reason)
        self.reason = reason
        self.summary = summary

    @property
    def finished(self) -> int:
        return self.summary.computed + self.summary.reused + self.summary.moved


@dataclass(frozen=True)
class Job:
    images: Location  # a folder, local or a URL (str and Path are taken too)
    annotations: Location
    out: Location
    config: TargetConfig = TargetConfig()
    size: int = 640
    pad: str = "center"
    thresh_dtype: str = "float32"
    with_images: bool = False
    recheck: bool = False
    jobs: int = -1
    dask: str | None = None  # a scheduler address, or local:N; None: joblib on this machine
    block: int = DEFAULT_BLOCK  # images per block: per shard, and per task
    storage_options: dict[str, Any] = field(default_factory=dict)  # fsspec's, for every URL
    overwrite: bool = False
    break_lock: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("images", "annotations", "out"):
            object.__setattr__(self, name, Location.of(getattr(self, name), self.storage_options))

    @property
    def block_bytes(self) -> int:
        """A block's threshold maps as float32: the largest array a task fills and zarrs copies."""
        return self.block * self.size**2 * 4

    @property
    def report(self) -> Location:
        """The failure report, beside the store."""
        return Location(self.out.url + ".failures.json", self.out.options)


@dataclass(frozen=True)
class BlockResult:
    """What a task did with its block of ``length`` entries from ``start``: per entry it was
    given, ``computed``, ``reused`` (carried in place), ``moved`` (carried from another index)
    or a Failure; ``stopped`` says why if the block could not be written (the store's storage
    failed, which every later block would meet too)."""

    start: int
    length: int
    outcomes: dict[int, str | Failure]
    stopped: str | None = None
    unreadable: tuple[tuple[int, str], ...] = ()  # (entries recomputed, why): carried ones it could not read
    shifted: int = 0  # entries computed whose words the baseline's keypoint slicing shifted

    @property
    def flags(self) -> list[bool]:
        """The block's done flags: entries it was not given (failed before) stay not done."""
        outcomes = [self.outcomes.get(index) for index in range(self.start, self.start + self.length)]
        return [outcome is not None and not isinstance(outcome, Failure) for outcome in outcomes]


def run(job: Job) -> Summary:
    """Bring the store at ``job.out`` up to date with the images and annotations.

    Raises AnnotationError for an unusable annotation file, StoreError for a store that
    is locked or was made with other settings, and Stopped when Ctrl-C, SIGTERM or a full
    disk ends the run early; per-image problems are collected as failures, and every other
    image is still stored. This process and the workers keep the memory they free for the
    next image (:mod:`ocr_targets.allocator`).
    """
    start = time.perf_counter()
    keep_freed_memory(job.block_bytes)  # --jobs 1 computes here
    entries = read_ufo(job.annotations)
    names = list(entries)
    settings = settings_digest(job.config, job.size, job.pad)
    writer = StoreWriter.open(
        job.out,
        names,
        config=job.config,
        size=job.size,
        pad=job.pad,
        thresh_dtype=job.thresh_dtype,
        with_images=job.with_images,
        block=job.block,
        sources={"images": job.images.url, "annotations": job.annotations.url},
        overwrite=job.overwrite,
        version=__version__,
        break_lock=job.break_lock,
    )
    summary = Summary(images=len(names))
    try:
        tasks = _plan(job, writer, entries, settings, summary)
        run_id = uuid.uuid4().hex
        results = _results(job, [(job, run_id, settings, *task) for task in tasks])
        pending = sum(len(entries) for *_, entries in tasks)
        bar = tqdm(total=pending, desc="computing", unit="img", disable=not job.progress)
        try:
            for result in results:
                bar.update(len(result.outcomes))
                if result.stopped:
                    raise _StorageFailed(result.stopped)
                with _signals_held():  # done flags written are done flags counted
                    writer.mark_done(result.start, result.flags)
                    summary.shifted += result.shifted
                    summary.unreadable.extend(result.unreadable)
                    for outcome in result.outcomes.values():
                        if isinstance(outcome, Failure):
                            summary.failures.append(outcome)
                        else:
                            setattr(summary, outcome, getattr(summary, outcome) + 1)
        finally:
            bar.close()
            with warnings.catch_warnings():  # a stopped run: joblib counts the results left unused
                warnings.filterwarnings("ignore", category=UserWarning, module=r"joblib\.")
                results.close()
    except KeyboardInterrupt as interrupt:
        reason = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
        raise Stopped(reason, _finish(job, summary, start, report=False)) from None
    except (*STORAGE_ERRORS, _StorageFailed) as error:
        reason = str(error) if isinstance(error, _StorageFailed) else _stop_reason(error)
        raise Stopped(reason, _finish(job, summary, start, report=False)) from None
    finally:
        writer.close()
    return _finish(job, summary, start)


def _results(job: Job, arguments: list[tuple]) -> Iterator[BlockResult]:
    """``_write(*a)`` of every task, as they complete: joblib processes here, or a Dask cluster."""
    if job.dask:
        yield from cluster.results(job.dask, _write, arguments, _crashed)
    else:
        yield from Parallel(n_jobs=job.jobs, return_as="generator_unordered")(delayed(_write)(*a) for a in arguments)


def _crashed(arguments: tuple, error: BaseException) -> BlockResult:
    """A task that never returned (its workers kept dying): its images are reported, the run goes on."""
    job, _, _, _, start, length, entries = arguments
    return _failed(job, start, length, entries, f"its block's task failed on the cluster ({error!r})")


def _failed(job: Job, start: int, length: int, entries: list[Entry], message: str) -> BlockResult:
    return BlockResult(
        start,
        length,
        {e.index: Failure(e.index, e.name, "targets", f"{job.images / e.name}: {message}") for e in entries},
    )


@contextlib.contextmanager
def _signals_held():
    """Hold Ctrl-C and SIGTERM until the block is through, then act on them. Only the main
    thread can set handlers; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sent: signal.signal(sent, lambda number, frame: held.append(number)) for sent in _STOPS}
    try:
        yield
    finally:
        for sent, handler in previous.items():
            signal.signal(sent, handler)
        if held:
            signal.raise_signal(held[0])


_STOPS = (signal.SIGINT, signal.SIGTERM)


class Entry(NamedTuple):
    """One image of a block's task."""

    index: int
    name: str
    annotation: ImageAnnotation
    source: int | None  # the old index to carry its entry over from, or None: compute it


def _plan(job: Job, writer: StoreWriter, entries: dict, settings: str, summary: Summary) -> list[tuple]:
    """Hash every image (when the store holds entries to carry over) and decide per block: a
    block whose every entry the store holds in place is kept as it is; any other is rewritten
    by a task that computes its changed images and carries the others over (from their old
    index: in place, or moved when images were reordered or renamed). Returns the tasks:
    (block, start, length, entries)."""
    done, stored = writer.state()
    summary.unreadable.extend(writer.unreadable)
    held = {digest: index for index, (digest, flag) in enumerate(zip(stored, done, strict=True)) if flag}
    names = writer.filenames
    planned: dict[int, Entry] = {}
    for index, name in enumerate(tqdm(names, desc="hashing", unit="img", disable=not job.progress, leave=False)):
        try:
            annotation = parse_entry(name, entries[name])
            if not held:  # nothing to carry over: the task reads and hashes the image once
                planned[index] = Entry(index, name, annotation, None)
                continue
            digest = content_hash(image_digest(read_image_bytes(job.images / name)), annotation, settings)
        except AnnotationError as error:
            summary.failures.append(Failure(index, name, "annotation", f"{job.annotations}: {error}"))
            continue
        except ImageError as error:
            summary.failures.append(Failure(index, name, "image", str(error)))
            continue
        source = index if index < len(done) and done[index] and stored[index] == digest else held.get(digest)
        if source is not None and job.recheck and writer.damage(source):
            source = None  # a damaged entry is computed afresh
        planned[index] = Entry(index, name, annotation, source)
    tasks, rewrite, sources = [], [], set()
    for start in range(0, len(names), job.block):
        block = [planned.get(index) for index in range(start, min(start + job.block, len(names)))]
        if all(entry is None or entry.source == entry.index for entry in block):
            summary.reused += sum(entry is not None for entry in block)  # kept as it is
            continue
        rewrite.append(start // job.block)
        sources.update(entry.source // job.block for entry in block if entry is not None and entry.source is not None)
        tasks.append((start // job.block, start, len(block), [entry for entry in block if entry is not None]))
    writer.arrange(rewrite, sources, [failure.index for failure in summary.failures])
    return tasks


def _finish(job: Job, summary: Summary, start: float, report: bool = True) -> Summary:
    summary.failures.sort(key=lambda failure: failure.index)
    summary.seconds = time.perf_counter() - start
    try:
        summary.store_bytes = job.out.disk_usage()
    except STORAGE_ERRORS:
        summary.store_bytes = None  # the storage does not answer
    if report:
        _write_report(job, summary)
    return summary


_ARRAYS: dict[tuple, tuple] = {}  # this worker's open arrays: (pid, store, run) -> (store's, staging's)


def _arrays(job: Job, run_id: str) -> tuple[dict, dict | None]:
    """The store's arrays and the staging copies' (None when there are none), opened once per
    worker and run: opening reads every array's metadata."""
    key = (os.getpid(), job.out.url, run_id)
    if key not in _ARRAYS:
        _ARRAYS.clear()
        names = layout(job.size, job.thresh_dtype, job.with_images)
        staging = job.out / STAGING
        # One thread per worker: the job's parallelism is its processes (more threads made --jobs 2 slower).
        _ARRAYS[key] = (
            open_arrays(open_group(job.out, "r+"), names, threads=1),
            open_arrays(open_group(staging), names, threads=1) if (staging / "zarr.json").exists() else None,
        )
    return _ARRAYS[key]


def _write(
    job: Job, run_id: str, settings: str, block: int, start: int, length: int, entries: list[Entry]
) -> BlockResult:
    """One block, in a worker: carry over the entries the store holds, compute the others,
    write the block's shards. Never raises: each image's problem is its Failure."""
    keep_freed_memory(job.block_bytes)
    arrays, staging = _arrays(job, run_id)
    rows: list[dict | None] = [None] * length
    outcomes: dict[int, str | Failure] = {}
    unreadable: list[tuple[int, str]] = []
    carried = [entry for entry in entries if entry.source is not None]
    try:
        old = read_rows(staging, [entry.source for entry in carried], f"{job.out} staged block") if carried else []
    except (StoreError, OSError) as error:  # the copy is damaged (or gone): compute them instead
        unreadable.append((len(carried), str(error)))
        old, carried = [], []
    kept = {entry.index: row for entry, row in zip(carried, old, strict=True)}
    for index, name, annotation, source in entries:
        if index in kept:
            rows[index - start] = kept[index]
            outcomes[index] = "reused" if source == index else "moved"
            continue
        outcome = _compute(job, settings, index, name, annotation)
        if isinstance(outcome, Failure):
            outcomes[index] = outcome
        else:
            rows[index - start] = outcome
            outcomes[index] = "computed"
    try:
        write_block(arrays, block, start, rows)
    except STORAGE_ERRORS as error:  # the store's storage failed: the client stops the run
        reason = _stop_reason(error)
        return BlockResult(start, length, outcomes, reason if reason == "disk full" else f"{job.out}: {reason}")
    computed = [rows[index - start] for index, outcome in outcomes.items() if outcome == "computed"]
    shifted = sum(int(row["image_info"][5] > 0) for row in computed)
    return BlockResult(start, length, outcomes, shifted=shifted, unreadable=tuple(unreadable))


def _compute(job: Job, settings: str, index: int, name: str, annotation: ImageAnnotation) -> dict | Failure:
    """One image's row of the store: decode, transform, compute.

    The hash is taken of the bytes this worker decoded, so an image edited during the
    run is stored with the hash of what was computed.
    """
    try:
        sample = load_sample(job.images, annotation, job.size, job.pad, pixels=job.with_images)
    except ImageError as error:
        return Failure(index, name, "image", str(error))
    try:
        digest = image_digest(sample.data)
        record = Record(
            content_hash(digest, annotation, settings),
            digest,
            sample.file_stat,
            sample.letterbox,
            sample.orientation,
            sample.targets(job.config),
            sample.polygons,
            sample.ignore,
            sample.dropped_points,
            sample.letterbox.image(sample.image) if job.with_images else None,
        )
        return entry_row(record, job.thresh_dtype, job.config)
    except Exception as error:  # a bug, or an image beyond the store's capacity: report it, keep going
        return Failure(index, name, "targets", f"{job.images / name}: {type(error).__name__}: {error}")


def _write_report(job: Job, summary: Summary) -> None:
    """The machine-readable failure report beside the store; removed when a run has none.
    If it cannot be written, ``summary.report_error`` says why (the failures are in its lines)."""
    report = {
        "store": str(job.out),
        "images": summary.images,
        "failed": [asdict(failure) for failure in summary.failures],
    }
    try:
        if summary.failures:
            job.report.write_bytes((json.dumps(report, indent=1) + "\n").encode())
        else:
            job.report.delete()
    except OSError as error:
        summary.report_error = f"{job.report}: cannot write the failure report ({error.strerror or error})"
