"""The job's worker side: one task per block, run in a worker process or on a Dask worker.

A task carries over the entries the store holds, computes the others and writes the block;
it never raises, so each image's problem comes back as its :class:`Failure` and the client
alone decides what is done.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from enum import Enum, StrEnum

from ocr_targets.allocator import keep_freed_memory
from ocr_targets.errors import AnnotationError
from ocr_targets.hashing import content_hash, image_digest
from ocr_targets.images import ImageError
from ocr_targets.location import STORAGE_ERRORS, Location, disk_full, storage_problem
from ocr_targets.store import StoreError, StoreSettings
from ocr_targets.store.writing import Blocks, Record
from ocr_targets.ufo import ImageAnnotation

from .errors import Stop, StopCause


class Stage(StrEnum):
    """Where an image failed: its entry in the annotation file, its image file, or the computing
    of its targets (a bug, or an image beyond the store's capacity)."""

    ANNOTATION = "annotation"
    IMAGE = "image"
    TARGETS = "targets"


@dataclass(frozen=True)
class Failure:
    """One image that could not be stored, and why, as fields: the summary groups failures by
    ``problem`` and names each image with its ``detail``; ``message`` is made from them."""

    index: int
    image: str  # the image's name, as the annotation file gives it
    stage: Stage
    file: str  # the file at fault: the annotation file (Stage.ANNOTATION), else the image's file
    entry: str | None  # Stage.ANNOTATION: the image's entry in that file (its name, or its line)
    problem: str  # what went wrong, without this file's particulars: failures are grouped by it
    detail: str = ""  # this image's particulars

    @classmethod
    def of_entry(cls, index: int, image: str, annotations: object, error: AnnotationError) -> Failure:
        """The failure of an image whose entry ``error.where`` of the file ``annotations`` cannot be used."""
        return cls(index, image, Stage.ANNOTATION, str(annotations), error.where, error.problem, error.detail)

    @classmethod
    def of_image(cls, index: int, image: str, error: ImageError) -> Failure:
        """The failure of an image whose file ``error.where`` cannot be used."""
        return cls(index, image, Stage.IMAGE, error.where, None, error.problem, error.detail)

    @classmethod
    def of_targets(cls, index: int, image: str, file: object, problem: str, detail: str = "") -> Failure:
        """The failure of an image read from ``file`` whose targets were not made."""
        return cls(index, image, Stage.TARGETS, str(file), None, problem, detail)

    @property
    def where(self) -> str:
        """The file, and the image's entry in it for an annotation failure."""
        return self.file if self.entry is None else f"{self.file}: {self.entry}"

    @property
    def message(self) -> str:
        """The whole failure in one line, as an InputError says it."""
        return f"{self.where}: {self.problem}" + (f" ({self.detail})" if self.detail else "")

    def report(self) -> dict[str, object]:
        """The failure as the failure report holds it: its fields, and the message they make."""
        return {**asdict(self), "stage": self.stage.value, "message": self.message}


class Outcome(Enum):
    """What a task did with an entry it stored (one it could not is a :class:`Failure`)."""

    COMPUTED = "computed"
    REUSED = "reused"  # carried over in place
    MOVED = "moved"  # carried over from another index: the images were reordered or renamed


@dataclass(frozen=True)
class TaskImage:
    """One image of a block's task."""

    index: int
    name: str
    annotation: ImageAnnotation
    source: int | None  # the old index to carry its entry over from, or None: compute it


@dataclass(frozen=True)
class Task:
    """A block for a worker: everything it needs travels with it (to a Dask worker, pickled)."""

    images: Location
    store: Location
    settings: StoreSettings
    settings_digest: str  # what every content hash of the run starts with
    run: str  # the run's id: a worker opens the store once per run
    block: int
    start: int
    length: int
    entries: tuple[TaskImage, ...]  # the block's images that are to be stored (failed ones are not)
    threads: int = 1  # zarrs' threads for compressing the block: the cores no other worker uses

    def failed(self, problem: str, detail: str) -> BlockResult:
        """The result of a task that never ran to its end: each of its images fails with ``problem``."""
        outcomes = {
            e.index: Failure.of_targets(e.index, e.name, self.images / e.name, problem, detail) for e in self.entries
        }
        return BlockResult(self.start, self.length, outcomes)


@dataclass(frozen=True)
class BlockResult:
    """What a task did with its block of ``length`` entries from ``start``: per entry it was
    given, its Outcome or its Failure; ``stopped`` says why if the block could not be written
    (the store's storage failed, which every later block would meet too)."""

    start: int
    length: int
    outcomes: dict[int, Outcome | Failure]
    stopped: Stop | None = None
    unreadable: tuple[tuple[int, str], ...] = ()  # (entries recomputed, why): carried ones it could not read
    shifted: int = 0  # entries computed whose words the baseline's keypoint slicing shifted

    @property
    def flags(self) -> list[bool]:
        """The block's done flags: entries it was not given (failed before) stay not done."""
        outcomes = [self.outcomes.get(index) for index in range(self.start, self.start + self.length)]
        return [outcome is not None and not isinstance(outcome, Failure) for outcome in outcomes]

    @property
    def attempted(self) -> int:
        """The entries the task computed or failed to: what the progress bar counts (the ones it
        carried over were never to compute)."""
        return sum(outcome not in (Outcome.REUSED, Outcome.MOVED) for outcome in self.outcomes.values())


def storage_stop(error: BaseException, store: Location) -> Stop:
    """Why a storage error of ``store`` stops the run: its disk is full (which the command line
    names as such), or the storage's problem."""
    if disk_full(error):
        return Stop(StopCause.DISK_FULL)
    return Stop(StopCause.STORAGE, storage_problem(error, store))


_OPENED: dict[tuple, Blocks] = {}  # this worker's store: (pid, store, run) -> its Blocks


def _blocks(task: Task) -> Blocks:
    """The store, opened once per worker and run: opening reads every array's metadata."""
    key = (os.getpid(), task.store.url, task.run)
    if key not in _OPENED:
        _OPENED.clear()
        _OPENED[key] = Blocks(task.store, task.settings, task.threads)
    return _OPENED[key]


def run_task(task: Task) -> BlockResult:
    """One block, in a worker: carry over the entries the store holds, compute the others,
    write the block's shards."""
    keep_freed_memory(task.settings.block_bytes)
    blocks = _blocks(task)
    rows: list[dict | None] = [None] * task.length
    outcomes: dict[int, Outcome | Failure] = {}
    unreadable: list[tuple[int, str]] = []
    carried = [entry for entry in task.entries if entry.source is not None]
    try:
        old = blocks.carried([entry.source for entry in carried])
    except (StoreError, OSError) as error:  # the copy is damaged (or gone): compute them instead
        unreadable.append((len(carried), str(error)))
        old, carried = [], []
    kept = {entry.index: row for entry, row in zip(carried, old, strict=True)}
    for entry in task.entries:
        position = entry.index - task.start
        if entry.index in kept:
            rows[position] = kept[entry.index]
            outcomes[entry.index] = Outcome.REUSED if entry.source == entry.index else Outcome.MOVED
            continue
        outcome = _compute(task, entry)
        if isinstance(outcome, Failure):
            outcomes[entry.index] = outcome
        else:
            rows[position] = outcome
            outcomes[entry.index] = Outcome.COMPUTED
    try:
        blocks.write(task.block, task.start, rows)
    except STORAGE_ERRORS as error:  # the store's storage failed: the client stops the run
        stop = storage_stop(error, task.store)
        if stop.cause is StopCause.STORAGE:  # said from a worker: which store it wrote
            stop = Stop(StopCause.STORAGE, f"{task.store}: {stop.detail}")
        return BlockResult(task.start, task.length, outcomes, stop)
    computed = [rows[index - task.start] for index, outcome in outcomes.items() if outcome is Outcome.COMPUTED]
    shifted = sum(int(row["image_info"][5] > 0) for row in computed)
    return BlockResult(task.start, task.length, outcomes, shifted=shifted, unreadable=tuple(unreadable))


def _compute(task: Task, entry: TaskImage) -> dict | Failure:
    """One image's row of the store: decode, transform, compute.

    The hash is taken of the bytes this worker decoded, so an image edited during the
    run is stored with the hash of what was computed.
    """
    settings = task.settings
    stack = settings.pipeline()
    try:
        sample = stack.sample(task.images, entry.annotation, settings.size, settings.pad, pixels=settings.with_images)
    except ImageError as error:
        return Failure.of_image(entry.index, entry.name, error)
    try:
        digest = image_digest(sample.data)
        record = Record(
            content_hash(digest, entry.annotation, task.settings_digest),
            digest,
            sample.file_stat,
            sample.letterbox,
            sample.orientation,
            stack.targets(sample, settings.config),
            sample.polygons,
            sample.ignore,
            sample.dropped_points,
            sample.letterbox.image(sample.image) if settings.with_images else None,
        )
        return record.row(settings)
    except Exception as error:  # a bug, or an image beyond the store's capacity: report it, keep going
        return Failure.of_targets(
            entry.index,
            entry.name,
            task.images / entry.name,
            "cannot compute its targets",
            f"{type(error).__name__}: {error}",
        )
