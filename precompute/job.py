"""The precompute job: hash every image, compute what changed in parallel, write the store."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from joblib import Parallel, delayed
from tqdm import tqdm

from ocr_targets import __version__
from ocr_targets.config import TargetConfig
from ocr_targets.hashing import content_hash, settings_digest
from ocr_targets.images import ImageError, load_sample, read_image_bytes
from ocr_targets.store import Record, StoreWriter, disk_usage, write_entry
from ocr_targets.ufo import AnnotationError, ImageAnnotation, parse_entry, read_ufo


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
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    store_bytes: int = 0

    def lines(self) -> list[str]:
        rate = self.computed / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.images} images: {self.computed} computed, {self.reused} reused, {len(self.failures)} failed "
            f"in {self.seconds:.1f} s ({rate:.1f} images/s computed); store {self.store_bytes / 2**20:.1f} MiB"
        ]
        lines += [f"  failed: {failure.message}" for failure in self.failures]
        return lines


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
    jobs: int = -1
    overwrite: bool = False
    progress: bool = True

    @property
    def report(self) -> Path:
        return self.out.with_name(self.out.name + ".failures.json")


def run(job: Job) -> Summary:
    """Bring the store at ``job.out`` up to date with the images and annotations.

    Raises AnnotationError for an unusable annotation file and StoreError for a store
    that is locked or was made with other settings; per-image problems are collected
    as failures, and every other image is still stored.
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
        done, stored_hashes = writer.done_and_hashes()
        pending: list[tuple[int, str, ImageAnnotation]] = []
        for index, name in enumerate(tqdm(names, desc="hashing", unit="img", disable=not job.progress, leave=False)):
            try:
                annotation = parse_entry(name, entries[name])
                data = read_image_bytes(job.images / name)
            except AnnotationError as error:
                summary.failures.append(Failure(index, name, "annotation", f"{job.annotations}: {error}"))
                continue
            except ImageError as error:
                summary.failures.append(Failure(index, name, "image", str(error)))
                continue
            if done[index] and stored_hashes[index] == content_hash(data, annotation, settings):
                summary.reused += 1
            else:
                pending.append((index, name, annotation))
        writer.invalidate([index for index, _, _ in pending] + [failure.index for failure in summary.failures])

        run_id = uuid.uuid4().hex
        tasks = (
            delayed(_compute)(job, run_id, settings, index, name, annotation) for index, name, annotation in pending
        )
        results = Parallel(n_jobs=job.jobs, return_as="generator_unordered")(tasks)
        for result in tqdm(results, total=len(pending), desc="computing", unit="img", disable=not job.progress):
            if isinstance(result, Failure):
                summary.failures.append(result)
            else:
                writer.mark_done(result)
                summary.computed += 1
    finally:
        writer.close()
    summary.failures.sort(key=lambda failure: failure.index)
    summary.seconds = time.perf_counter() - start
    summary.store_bytes = disk_usage(job.out)
    _write_report(job, summary)
    return summary


def _compute(job: Job, run_id: str, settings: str, index: int, name: str, annotation: ImageAnnotation) -> int | Failure:
    """One image, in a worker: decode, transform, compute, write all but ``done``. Never raises.

    The hash is taken of the bytes this worker decoded, so an image edited during the
    run is stored with the hash of what was computed.
    """
    try:
        sample = load_sample(job.images, annotation, job.size, job.pad)
    except ImageError as error:
        return Failure(index, name, "image", str(error))
    try:
        targets = sample.targets(job.config)
        record = Record(
            content_hash(sample.data, annotation, settings),
            sample.letterbox,
            sample.orientation,
            targets,
            sample.polygons,
            sample.ignore,
            sample.letterbox.image(sample.image) if job.with_images else None,
        )
        write_entry(job.out, run_id, index, record, job.thresh_dtype, job.config)
    except Exception as error:  # a bug or a disk problem: report it with the image, keep going
        return Failure(index, name, "targets", f"{job.images / name}: {type(error).__name__}: {error}")
    return index


def _write_report(job: Job, summary: Summary) -> None:
    """The machine-readable failure report beside the store; removed when a run has none."""
    if not summary.failures:
        job.report.unlink(missing_ok=True)
        return
    report = {
        "store": str(job.out),
        "images": summary.images,
        "failed": [asdict(failure) for failure in summary.failures],
    }
    job.report.write_text(json.dumps(report, indent=1) + "\n")
