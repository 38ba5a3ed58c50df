"""The precompute job: hash every image, compute what changed in parallel, write the store."""

from __future__ import annotations

import contextlib
import errno
import json
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from joblib import Parallel, delayed
from tqdm import tqdm

from ocr_targets import __version__
from ocr_targets.config import TargetConfig
from ocr_targets.hashing import content_hash, image_digest, settings_digest
from ocr_targets.images import ImageError, load_sample, read_image_bytes
from ocr_targets.store import Record, StoreWriter, disk_usage, write_entry
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
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    store_bytes: int = 0
    report_error: str | None = None

    def lines(self) -> list[str]:
        rate = self.computed / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.images} images: {self.computed} computed, {self.reused} reused, {self.moved} moved, "
            f"{len(self.failures)} failed "
            f"in {self.seconds:.1f} s ({rate:.1f} images/s computed); store {self.store_bytes / 2**20:.1f} MiB"
        ]
        lines += [f"  failed: {failure.message}" for failure in self.failures]
        return lines


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
    images: Path
    annotations: Path
    out: Path
    config: TargetConfig = TargetConfig()
    size: int = 640
    pad: str = "center"
    thresh_dtype: str = "float32"
    with_images: bool = False
    recheck: bool = False
    jobs: int = -1
    dask: str | None = None  # a scheduler address, or local:N; None: joblib on this machine
    overwrite: bool = False
    progress: bool = True

    @property
    def report(self) -> Path:
        return self.out.with_name(self.out.name + ".failures.json")


def run(job: Job) -> Summary:
    """Bring the store at ``job.out`` up to date with the images and annotations.

    Raises AnnotationError for an unusable annotation file, StoreError for a store that
    is locked or was made with other settings, and Stopped when Ctrl-C, SIGTERM or a full
    disk ends the run early; per-image problems are collected as failures, and every other
    image is still stored.
    """
    start = time.perf_counter()
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
        sources={"images": str(job.images.resolve()), "annotations": str(job.annotations.resolve())},
        overwrite=job.overwrite,
        version=__version__,
    )
    summary = Summary(images=len(names))
    try:
        pending = _plan(job, writer, entries, settings, summary)
        run_id = uuid.uuid4().hex
        results = _results(job, [(job, run_id, settings, *task) for task in pending])
        bar = tqdm(total=len(pending), desc="computing", unit="img", disable=not job.progress)
        try:
            for result in results:
                bar.update()
                if isinstance(result, Failure):
                    if result.stage == "disk full":
                        raise OSError(errno.ENOSPC, result.message)
                    summary.failures.append(result)
                else:
                    with _signals_held():  # a done flag written is a done flag counted
                        writer.mark_done(result)
                        summary.computed += 1
        finally:
            bar.close()
            with warnings.catch_warnings():  # a stopped run: joblib counts the results left unused
                warnings.filterwarnings("ignore", category=UserWarning, module=r"joblib\.")
                results.close()
    except KeyboardInterrupt as interrupt:
        reason = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
        raise Stopped(reason, _finish(job, summary, start, report=False)) from None
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise Stopped("disk full", _finish(job, summary, start, report=False)) from None
    finally:
        writer.close()
    return _finish(job, summary, start)


def _results(job: Job, arguments: list[tuple]) -> Iterator[int | Failure]:
    """``_compute(*a)`` of every task, as they complete: joblib processes here, or a Dask cluster."""
    if job.dask:
        yield from cluster.results(job.dask, _compute, arguments, _crashed)
    else:
        yield from Parallel(n_jobs=job.jobs, return_as="generator_unordered")(delayed(_compute)(*a) for a in arguments)


def _crashed(arguments: tuple, error: BaseException) -> Failure:
    """A task that never returned (its workers kept dying): the image is reported, the run goes on."""
    job, _, _, index, name, _ = arguments
    return Failure(index, name, "targets", f"{job.images / name}: its task failed on the cluster ({error!r})")


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


def _plan(job: Job, writer: StoreWriter, entries: dict, settings: str, summary: Summary) -> list:
    """Hash every image; reuse an entry in place, move one whose content hash the store holds at
    another index (reordered or renamed images), and return the rest, to compute."""
    done, stored_hashes = writer.done_and_hashes()
    held = {digest: index for index, (digest, flag) in enumerate(zip(stored_hashes, done, strict=True)) if flag}
    pending: list[tuple[int, str, ImageAnnotation]] = []
    moves: dict[int, int] = {}
    names = writer.attributes["filenames"]
    for index, name in enumerate(tqdm(names, desc="hashing", unit="img", disable=not job.progress, leave=False)):
        try:
            annotation = parse_entry(name, entries[name])
            digest = content_hash(image_digest(read_image_bytes(job.images / name)), annotation, settings)
        except AnnotationError as error:
            summary.failures.append(Failure(index, name, "annotation", f"{job.annotations}: {error}"))
            continue
        except ImageError as error:
            summary.failures.append(Failure(index, name, "image", str(error)))
            continue
        source = index if index < len(done) and done[index] and stored_hashes[index] == digest else held.get(digest)
        if source is not None and job.recheck and writer.damage(source):
            source = None  # a damaged entry is computed afresh
        if source == index:
            summary.reused += 1
        elif source is not None:
            moves[index] = source
            summary.moved += 1
        else:
            pending.append((index, name, annotation))
    writer.arrange(moves, [index for index, _, _ in pending] + [failure.index for failure in summary.failures])
    return pending


def _finish(job: Job, summary: Summary, start: float, report: bool = True) -> Summary:
    summary.failures.sort(key=lambda failure: failure.index)
    summary.seconds = time.perf_counter() - start
    summary.store_bytes = disk_usage(job.out)
    if report:
        _write_report(job, summary)
    return summary


def _compute(job: Job, run_id: str, settings: str, index: int, name: str, annotation: ImageAnnotation) -> int | Failure:
    """One image, in a worker: decode, transform, compute, write all but ``done``. Never raises.

    The hash is taken of the bytes this worker decoded, so an image edited during the
    run is stored with the hash of what was computed.
    """
    try:
        sample = load_sample(job.images, annotation, job.size, job.pad, pixels=job.with_images)
    except ImageError as error:
        return Failure(index, name, "image", str(error))
    try:
        targets = sample.targets(job.config)
        digest = image_digest(sample.data)
        record = Record(
            content_hash(digest, annotation, settings),
            digest,
            sample.file_stat,
            sample.letterbox,
            sample.orientation,
            targets,
            sample.polygons,
            sample.ignore,
            sample.letterbox.image(sample.image) if job.with_images else None,
        )
        write_entry(job.out, run_id, index, record, job.thresh_dtype, job.config)
    except OSError as error:
        if error.errno == errno.ENOSPC:  # the run cannot go on: the parent stops it
            return Failure(index, name, "disk full", f"{job.out}: no space left on the device")
        return Failure(index, name, "targets", f"{job.images / name}: cannot write its entry ({error})")
    except Exception as error:  # a bug: report it with the image, keep going
        return Failure(index, name, "targets", f"{job.images / name}: {type(error).__name__}: {error}")
    return index


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
            job.report.write_text(json.dumps(report, indent=1) + "\n")
        else:
            job.report.unlink(missing_ok=True)
    except OSError as error:
        summary.report_error = f"{job.report}: cannot write the failure report ({error.strerror})"
