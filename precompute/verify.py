"""``ocr-targets verify``: recompute entries with the reference path and compare them to the store."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

from ocr_targets import arrays
from ocr_targets.errors import InputError
from ocr_targets.hashing import content_hash, image_digest, settings_digest
from ocr_targets.images import ImageError, MissingImage
from ocr_targets.location import STORAGE_ERRORS, Location, storage_problem
from ocr_targets.sources import Sources
from ocr_targets.store import Changed, NotDone, StoreError, TargetStore, Unreadable, open_store
from ocr_targets.ufo import AnnotationError, parse_entry, read_ufo

from .progress import progress as progress_of

MAPS = tuple(spec.name for spec in arrays.MAPS if spec.verified)


@dataclass
class Check:
    """The verdict on one entry."""

    index: int
    image: str
    problems: list[str] = field(default_factory=list)
    differences: dict[str, float] = field(default_factory=dict)  # largest absolute difference per map
    stale: bool = False
    not_done: bool = False  # never computed: its image failed, or a run was interrupted before it
    unrecomputable: InputError | None = None  # why the entry could not be recomputed

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Report:
    store: str
    images: Location  # where the images were read from
    recorded: str  # the folder the store was made from
    checks: list[Check]
    missing: list[str]  # in the annotations, not in the store
    extra: list[str]  # in the store, not in the annotations
    seed: int | None
    update: str  # the command that brings the store up to date with its sources

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra and all(check.ok for check in self.checks)

    def lines(self) -> list[str]:
        lines = [
            "largest absolute difference per map, stored vs recomputed by the reference path:",
            f"{'image':<32}" + "".join(f"{name:>13}" for name in MAPS) + "  verdict",
        ]
        for check in self.checks:
            if check.unrecomputable:
                continue  # told below, grouped
            cells = "".join(
                f"{check.differences[name]:>13.2e}" if name in check.differences else f"{'-':>13}" for name in MAPS
            )
            lines.append(f"{check.image:<32}{cells}  {'ok' if check.ok else '; '.join(check.problems)}")
        lines += [f"missing from the store: {name}" for name in self.missing]
        lines += [f"in the store but not in the annotations: {name}" for name in self.extra]
        bad = [check for check in self.checks if not check.ok]
        stale = sum(check.stale for check in self.checks)
        lost = [check.unrecomputable for check in self.checks if check.unrecomputable]
        if lost:
            shown = "; ".join(map(str, lost[:3])) + (f"; and {len(lost) - 3} more" if len(lost) > 3 else "")
            lines.append(f"{len(lost)} entries could not be recomputed: {shown}")
            if all(isinstance(why, MissingImage) for why in lost):
                lines.append(
                    f"none of them is in {self.images}: give the folder of the images with --images DIR "
                    f"(the store was made from {self.recorded})"
                )
        if stale:
            lines.append(
                f"{stale} stale entries: their image or words changed since precompute (even where the maps still "
                f"match); update them with: {self.update}"
            )
        sample = f" (random sample, seed {self.seed})" if self.seed is not None else ""
        not_done = sum(check.not_done for check in self.checks)
        never = f", {not_done} never computed" if not_done else ""
        lines.append(
            f"{len(self.checks)} entries checked{sample}: {len(self.checks) - len(bad)} match, {len(bad)} do not "
            f"({stale} stale{never}), {len(self.missing)} missing, {len(self.extra)} extra: "
            + ("OK" if self.ok else "FAILED")
        )
        return lines


def verify(
    path: str | Path | Location,
    images: str | Path | Location | None = None,
    annotations: str | Path | Location | None = None,
    sample: int | None = None,
    seed: int | None = None,
    jobs: int = -1,
    progress: bool = True,
) -> Report:
    """Compare the store at ``path`` with the reference targets of its images (or of ``images``)."""
    store = open_store(path)
    sources = Sources.recorded(store, images, annotations)
    images = sources.images
    entries = read_ufo(sources.annotations)
    stored = set(store.filenames)
    missing = [name for name in entries if name not in stored]
    extra = [name for name in store.filenames if name not in entries]
    indices = [index for index, name in enumerate(store.filenames) if name in entries]
    if sample is not None and sample < len(indices):
        seed = random.randrange(2**32) if seed is None else seed
        indices = sorted(random.Random(seed).sample(indices, sample))
    else:
        seed = None
    tasks = (delayed(check_entry)(store, index, images, entries[store.filenames[index]]) for index in indices)
    results = Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks)
    bar, checks = progress_of(len(indices), "verifying", progress), []
    for check in results:
        checks.append(check)
        bar.update(1)
    bar.close()
    recorded = store.attrs["sources"]["images"]
    checks.sort(key=lambda check: check.index)
    return Report(store.path, images, recorded, checks, missing, extra, seed, sources.precompute(store))


def check_entry(store: TargetStore, index: int, images: Location, raw_entry: object) -> Check:
    """Everything about one entry that can be wrong, each problem said with the image's name."""
    check = Check(index, store.filenames[index])
    try:
        _check_entry(check, store, images, raw_entry)
    except NotDone as error:
        if error.holder is None:
            check.not_done = True
            check.problems.append("not computed (failed or interrupted precompute)")
        else:
            check.problems.append(
                f"holds the targets of another image ({error.holder}): the file list and the entries disagree; "
                "rerun precompute"
            )
    except Changed:
        raise  # every entry's verdict would be moot
    except Unreadable as error:
        check.problems.append("unreadable: " + "; ".join(error.problems))
    except StoreError as error:
        check.problems.append(f"corrupt: {error}")
    except STORAGE_ERRORS as error:  # an object the storage will not give: this entry's, the others go on
        check.problems.append(f"unreadable: {storage_problem(error, store.location)}")
    return check


def _check_entry(check: Check, store: TargetStore, images: Location, raw_entry: object) -> None:
    index, name = check.index, check.image
    stack = store.settings.pipeline()
    store.require_done([index])
    missing = store.missing_objects(index)
    if missing:
        check.problems.append("corrupt: objects missing: " + ", ".join(missing))
    entry = store[index]
    try:
        sample = stack.sample(images, parse_entry(name, raw_entry), store.size, store.pad, pixels=store.has_images)
    except (AnnotationError, ImageError) as error:
        check.problems.append(f"cannot recompute: {error}")
        check.unrecomputable = error
        return
    settings = settings_digest(store.settings)
    digest = image_digest(sample.data)
    if content_hash(digest, sample.annotation, settings) != entry.content_hash:
        check.stale = True
        check.problems.append("stale: the image or its words changed since precompute; rerun precompute")
    expected = stack.reference(sample, store.config)
    for map_name in MAPS:
        stored, computed = getattr(entry, map_name), getattr(expected, map_name)
        check.differences[map_name] = float(np.abs(stored.astype(np.float64) - computed).max())
    tolerance = dict.fromkeys(arrays.FLOAT_MAPS, store.attrs["thresh_tolerance"])  # as --thresh-dtype stores them
    differing = [m for m in MAPS if check.differences[m] > tolerance.get(m, 0.0)]
    letterbox = sample.letterbox
    if entry.original_size != letterbox.original_size or not np.array_equal(entry.matrix, letterbox.matrix):
        differing.append("original size or matrix")
    if not np.array_equal(entry.inverse_matrix, letterbox.inverse_matrix):
        differing.append("inverse matrix")
    _, stored_digest = store.image_file(index)
    if not check.stale and stored_digest != digest:
        differing.append("image file digest")
    if not _same_polygons(entry.shrunk_polygons, expected.shrunk_polygons):
        differing.append("shrunk polygons")
    if not _same_polygons(entry.words, sample.polygons) or entry.ignore != sample.ignore:
        differing.append("words")
    if entry.image is not None and not np.array_equal(entry.image, letterbox.image(sample.image)):
        differing.append("image")
    if differing:
        check.problems.append("differs: " + ", ".join(differing))


def _same_polygons(stored: list[np.ndarray], expected: list[np.ndarray]) -> bool:
    return len(stored) == len(expected) and all(map(np.array_equal, stored, expected))
