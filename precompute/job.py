"""The precompute job: hash every image, rewrite the blocks that changed in parallel, one task
per block; the client alone marks blocks done."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ocr_targets import __version__
from ocr_targets.allocator import keep_freed_memory
from ocr_targets.hashing import content_hash, settings_digest
from ocr_targets.images import ImageError
from ocr_targets.location import STORAGE_ERRORS, Location
from ocr_targets.sources import Sources
from ocr_targets.store import StoreSettings
from ocr_targets.store.writing import StoreWriter, over_capacity
from ocr_targets.ufo import AnnotationError, ImageAnnotation, expected_shape, parse_entry, read_ufo_file

from . import cluster, workers
from .errors import CommandError, Stop, StopCause
from .progress import progress
from .tasks import BlockResult, Failure, Outcome, Stage, Task, TaskImage, run_task, storage_stop


@dataclass
class Summary:
    images: int
    folder: str = ""  # the images folder: where the files of the images that failed are
    computed: int = 0
    reused: int = 0
    moved: int = 0
    shifted: int = 0  # images computed whose words the baseline's keypoint slicing shifted
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (entries recomputed, why)
    failures: list[Failure] = field(default_factory=list)
    computed_names: list[str] = field(default_factory=list)  # the first few
    seconds: float = 0.0
    store_bytes: int | None = 0
    missing: list[str] = field(default_factory=list)  # objects of kept entries that are not there
    refused: list[str] = field(default_factory=list)  # ... that the storage will not give, and why
    report_error: str | None = None

    def count(self, name: str, outcome: Outcome | Failure) -> None:
        """One image's outcome, counted (the first few computed are named, for an update's summary)."""
        if isinstance(outcome, Failure):
            self.failures.append(outcome)
        elif outcome is Outcome.COMPUTED:
            self.computed += 1
            if len(self.computed_names) < 5:
                self.computed_names.append(name)
        elif outcome is Outcome.REUSED:
            self.reused += 1
        else:  # Outcome.MOVED
            self.moved += 1

    def lines(self) -> list[str]:
        copied = f" ({self.moved} copied from another entry of the same content)" if self.moved else ""
        rate = f" ({self.computed / self.seconds:.1f} images/s computed)" if self.computed and self.seconds else ""
        lines = [
            f"{self.images} images: {self.computed} computed, {self.reused + self.moved} reused{copied}, "
            f"{len(self.failures)} failed in {self.seconds:.1f} s{rate}; "
            + ("store size unknown" if self.store_bytes is None else f"store {self.store_bytes / 2**20:.1f} MiB")
        ]
        if self.computed and self.reused + self.moved:  # an update: which images changed
            lines.append(f"computed: {_some(self.computed_names, self.computed)}")
        if self.unreadable:
            count = sum(entries for entries, _ in self.unreadable)
            lines.append(
                f"{count} entries were recomputed because their stored objects could not be read "
                f"(the first: {self.unreadable[0][1]})"
            )
        if self.missing:
            lines.append(
                f"objects of entries kept as done are missing: {_some(self.missing, len(self.missing), 3)}; "
                "this run does not look inside the entries it keeps: rerun with --recheck to recompute them"
            )
        if self.refused:
            lines.append(
                f"objects of entries kept as done the storage refuses: {_some(self.refused, len(self.refused), 1)}; "
                "neither this run nor --recheck (which must read them) repairs that: fix it, then `ocr-targets verify`"
            )
        if self.shifted:
            lines.append(
                f"{self.shifted} of the images computed had words shifted by the baseline's keypoint slicing "
                "(a point the resize moved out of the image was dropped), as in training; "
                "`ocr-targets info` counts them"
            )
        for (stage, problem), failures in _grouped(self.failures).items():
            named = [failure.image + (f" ({failure.detail})" if failure.detail else "") for failure in failures]
            within = failures[0].file if stage is Stage.ANNOTATION else self.folder
            lines.append(f"failed, {problem}: {_some(named, len(failures), shown=3)} (in {within})")
        if len(self.failures) > 3:
            lines.append("(every failure is listed in the failure report)")
        return lines


def _some(names: list[str], count: int, shown: int = 5) -> str:
    """The first ``shown`` of ``names`` and how many more: a list a terminal can show."""
    more = f" and {count - shown} more" if count > shown else ""
    return ", ".join(names[:shown]) + more


def _grouped(failures: list[Failure]) -> dict[tuple[Stage, str], list[Failure]]:
    """The failures by stage and problem: those of a group share their fix, and their file (the
    annotation file) or folder (the images')."""
    grouped: dict[tuple[Stage, str], list[Failure]] = {}
    for failure in failures:
        grouped.setdefault((failure.stage, failure.problem), []).append(failure)
    return grouped


class _StorageFailed(Exception):
    """A task could not write its block: the run stops, as for any failure of the store's storage."""

    def __init__(self, stop: Stop) -> None:
        super().__init__(stop.detail or stop.cause.value)
        self.stop = stop


class Stopped(Exception):
    """The run stopped before its end (``stop``: why); every entry it finished is marked done,
    nothing half-written is, and a rerun completes the store."""

    def __init__(self, stop: Stop, summary: Summary, held: int | None = None) -> None:
        super().__init__(stop.detail or stop.cause.value)
        self.stop = stop
        self.summary = summary
        self.held = held  # the entries the store holds done, as `info` counts them (None: unknown)

    @property
    def finished(self) -> int:
        """The images done: the store's count where it could be read, else what this run kept and made."""
        return self.summary.computed + self.summary.reused + self.summary.moved if self.held is None else self.held


@dataclass(frozen=True)
class Job:
    images: Location  # a folder, local or a URL (str and Path are taken too)
    annotations: Location
    out: Location
    settings: StoreSettings = StoreSettings()
    recheck: bool = False
    jobs: int = -1
    dask: str | None = None  # a scheduler address, or local:N; None: processes on this machine
    storage_options: dict[str, Any] = field(default_factory=dict)  # fsspec's, for every URL
    overwrite: bool = False
    break_lock: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("images", "annotations", "out"):
            object.__setattr__(self, name, Location.of(getattr(self, name), self.storage_options))

    @property
    def sources(self) -> Sources:
        """The images folder and the annotation file: what the store records of them, each image's file."""
        return Sources(self.images, self.annotations)

    @property
    def report(self) -> Location:
        """The failure report, beside the store."""
        return Location(self.out.url + ".failures.json", self.out.options)


def run(job: Job) -> Summary:
    """Bring the store at ``job.out`` up to date with the images and annotations.

    Raises AnnotationError for an unusable annotation file, StoreError for a store that
    is locked or was made with other settings, and Stopped when Ctrl-C, SIGTERM or a full
    disk ends the run early; per-image problems are collected as failures, and every other
    image is still stored. This process and the workers keep the memory they free for the
    next image (:mod:`ocr_targets.allocator`).
    """
    start = time.perf_counter()
    keep_freed_memory(job.settings.block_bytes)  # --jobs 1 computes here
    entries, annotations_digest = read_ufo_file(job.annotations)
    names = list(entries)
    if not job.dask and len(names) > job.settings.block and processes(job.jobs, len(names)) > 1:
        workers.start()  # workers may be wanted: the server imports while this process plans
    _require_some_images(job, names)
    parsed = _parsed(job, entries)
    writer = StoreWriter.open(
        job.out,
        names,
        job.settings,
        sources=job.sources.record(annotations_digest),
        overwrite=job.overwrite,
        version=__version__,
        break_lock=job.break_lock,
    )
    summary = Summary(images=len(names), folder=str(job.images))
    try:
        tasks = _plan(job, writer, parsed, summary)
        pending = sum(entry.source is None for task in tasks for entry in task.entries)
        results = _results(job, tasks, pending)
        bar = progress(pending, "computing", job.progress)
        try:
            for result in results:
                bar.update(result.attempted)
                if result.stopped:
                    raise _StorageFailed(result.stopped)
                with _signals_held():  # done flags written are done flags counted
                    writer.mark_done(result.start, result.flags)
                    summary.shifted += result.shifted
                    summary.unreadable.extend(result.unreadable)
                    for index, outcome in result.outcomes.items():
                        summary.count(names[index], outcome)
        finally:
            bar.close()
            results.close()
    except KeyboardInterrupt as interrupt:
        raise Stopped(
            Stop(StopCause.of(interrupt)), _finish(job, summary, start, report=False), writer.held()
        ) from None
    except (*STORAGE_ERRORS, _StorageFailed) as error:
        stop = error.stop if isinstance(error, _StorageFailed) else storage_stop(error, job.out)
        raise Stopped(stop, _finish(job, summary, start, report=False), writer.held()) from None
    finally:
        writer.close()
    return _finish(job, summary, start)


# A worker starts in milliseconds (precompute.workers), from a forkserver that imports for about
# 0.7 s of a core while this process plans: a run of a few images, over before that, is computed
# here. One worker per this many images to compute, at most.
IMAGES_PER_PROCESS = 8


def processes(jobs: int, pending: int) -> int:
    """How many worker processes a run of ``pending`` images to compute starts: ``jobs`` (-1: one
    per core), but none beyond one per IMAGES_PER_PROCESS images (1: this process computes)."""
    wanted = (os.cpu_count() or 1) if jobs == -1 else jobs
    return max(1, min(wanted, -(-pending // IMAGES_PER_PROCESS)))


def _results(job: Job, tasks: list[Task], pending: int) -> Iterator[BlockResult]:
    """Every task's result, as they complete: worker processes here (or this process alone, for
    a small job), or a Dask cluster."""
    if job.dask:
        yield from cluster.results(
            job.dask,
            run_task,
            tasks,
            lambda task, error: task.failed("its block's task failed on the cluster", repr(error)),
        )
        return
    count = max(1, min(processes(job.jobs, pending), len(tasks)))  # a task is a block: a process each at most
    threads = max(1, (os.cpu_count() or 1) // count)  # a block's compression on the cores left idle
    tasks = [replace(task, threads=threads) for task in tasks]
    if count == 1:
        yield from map(run_task, tasks)
        return
    yield from workers.results(
        run_task,
        tasks,
        count,
        workers.context(),
        lambda task, error: task.failed("its worker process died", str(error)),
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


def _parsed(job: Job, entries: dict) -> dict[str, ImageAnnotation | AnnotationError]:
    """Each image's words, or why its entry cannot be read. An annotation file none of whose
    entries can be read (words as a list, flat points: another format) stops the run before
    anything is written, naming the first entry's fault: every image would fail the same way."""
    parsed: dict[str, ImageAnnotation | AnnotationError] = {}
    for name, entry in entries.items():
        try:
            parsed[name] = parse_entry(name, entry)
        except AnnotationError as error:
            parsed[name] = error
    first = next(iter(parsed.values()), None)
    if parsed and all(isinstance(value, AnnotationError) for value in parsed.values()):
        raise AnnotationError(
            job.annotations,
            f"none of its {len(parsed)} images' entries can be read, so nothing was written "
            f"(the first: {first}); expected {expected_shape(next(iter(entries.values())))}",
        )
    return parsed


def _plan(job: Job, writer: StoreWriter, parsed: dict, summary: Summary) -> list[Task]:
    """Hash every image (when the store holds entries to carry over) and decide per block: a
    block whose every entry the store holds in place is kept as it is; any other is rewritten
    by a task that computes its changed images and carries the others over (from their old
    index: in place, or moved when images were reordered or renamed)."""
    settings = settings_digest(job.settings)
    done, stored = writer.state()
    summary.unreadable.extend(writer.unreadable)
    held = {digest: index for index, (digest, flag) in enumerate(zip(stored, done, strict=True)) if flag}
    names = writer.filenames
    planned: dict[int, TaskImage] = {}
    hashing = progress(len(names) if held else 0, "hashing", job.progress, keep=False)
    for index, name in enumerate(names):
        hashing.update(1)
        try:
            annotation = parsed[name]
            if isinstance(annotation, AnnotationError):
                raise annotation
            too_many = over_capacity("word", len(annotation.polygons), sum(map(len, annotation.polygons)))
            if too_many:  # before any geometry: it could only fail after it
                raise AnnotationError(name, too_many)
            if not held:  # nothing to carry over: the task reads and hashes the image once
                planned[index] = TaskImage(index, name, annotation, None)
                continue
            digest = content_hash(job.sources.image_digest(name), annotation, settings)
        except AnnotationError as error:
            summary.failures.append(Failure.of_entry(index, name, job.annotations, error))
            continue
        except ImageError as error:
            summary.failures.append(Failure.of_image(index, name, error))
            continue
        source = index if index < len(done) and done[index] and stored[index] == digest else held.get(digest)
        if source is not None and job.recheck and writer.damage(source):
            source = None  # a damaged entry is computed afresh
        planned[index] = TaskImage(index, name, annotation, source)
    hashing.close()
    tasks, rewrite, sources, size, run = [], [], set(), job.settings.block, uuid.uuid4().hex
    for start in range(0, len(names), size):
        block = [planned.get(index) for index in range(start, min(start + size, len(names)))]
        if all(entry is None or entry.source == entry.index for entry in block):
            summary.reused += sum(entry is not None for entry in block)  # kept as it is
            continue
        rewrite.append(start // size)
        sources.update(entry.source // size for entry in block if entry is not None and entry.source is not None)
        kept = tuple(entry for entry in block if entry is not None)
        tasks.append(Task(job.images, job.out, job.settings, settings, run, start // size, start, len(block), kept))
    writer.arrange(rewrite, sources, [failure.index for failure in summary.failures])
    if held and not job.recheck:  # what --recheck would find among the blocks kept, cheaply
        kept = [
            block
            for block in range(-(-len(names) // size))
            if block not in rewrite and done[block * size : (block + 1) * size].any()
        ]
        summary.missing, summary.refused = writer.unrepaired(kept)
    return tasks


def _require_some_images(job: Job, names: list[str]) -> None:
    """Stop before anything is written when none of the annotated images is in ``--images``
    (a wrong folder, or an annotation file of other images): a run would fail every one."""
    if not names or any(job.sources.has_image(name) for name in names[:32]):
        return
    there = {path.removeprefix(job.images.path.rstrip("/") + "/") for path in job.images.fs.find(job.images.path)}
    if not there.isdisjoint(names):
        return
    missing = f"{job.images}: none of the {len(names)} images that {job.annotations} names is there"
    looked = f"looked for {job.images / names[0]}, ..."
    found = _subfolders(there, set(names))
    if found:  # --images one folder too high
        sub, count = max(found.items(), key=lambda item: item[1])
        raise CommandError(
            f"{missing} ({looked}), but {count} of them are in its subfolder {sub}: give --images {job.images / sub}"
        )
    raise CommandError(
        f"{missing} ({looked}; the folder holds {len(there)} file{'s' * (len(there) != 1)}); "
        "check --images and --annotations"
    )


def _subfolders(files: set[str], names: set[str]) -> dict[str, int]:
    """The subfolders of the images folder under which ``files`` (paths relative to it) hold some of
    the image ``names``, and how many each holds."""
    found: dict[str, int] = {}
    for path in files:
        parts = path.split("/")
        for cut in range(1, len(parts)):
            if "/".join(parts[cut:]) in names:
                sub = "/".join(parts[:cut])
                found[sub] = found.get(sub, 0) + 1
    return found


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


def _write_report(job: Job, summary: Summary) -> None:
    """The machine-readable failure report beside the store; removed when a run has none.
    If it cannot be written, ``summary.report_error`` says why (the failures are in its lines)."""
    report = {
        "store": str(job.out),
        "images": summary.images,
        "failed": [failure.report() for failure in summary.failures],
    }
    try:
        if summary.failures:
            job.report.write_bytes((json.dumps(report, indent=1) + "\n").encode())
        else:
            job.report.delete()
    except OSError as error:
        summary.report_error = f"{job.report}: cannot write the failure report ({error.strerror or error})"
