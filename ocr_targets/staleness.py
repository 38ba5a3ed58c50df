"""Whether a store serves a dataset as it is now: the check a training job makes once, when its
collate is made, at the cost of a stat per image."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .config import ALGORITHM_VERSION
from .hashing import content_hash, image_digest, settings_digest
from .images import ImageError, image_location, read_image_bytes
from .location import Location
from .store import StoreError, TargetStore
from .ufo import ImageAnnotation, read_annotations

if TYPE_CHECKING:
    from .dataset import UFODataset


class _Sources(NamedTuple):
    """What the check reads of a dataset (a UFODataset has these): no torch needed to check a store."""

    images: Location
    annotations_path: Location
    filenames: list[str]
    annotations: list[ImageAnnotation]


def check_store(store: TargetStore, dataset: UFODataset | None = None) -> None:
    """Raise StoreError, saying what differs and how to fix it, unless ``store`` serves ``dataset``
    (by default, the dataset the store records it was made from).

    When the annotation file's bytes are those the store recorded, its words and file list are
    too: the images are stat'ed and only those whose size or mtime changed are read, and no
    word is parsed or hashed. Otherwise every entry's content hash is taken anew."""
    if dataset is None:
        images, annotations = _recorded_sources(store)
    else:
        images, annotations = Location.of(dataset.images), Location.of(dataset.annotations_path)
    fix = (
        "bring it up to date with: ocr-targets precompute "
        + f"--images {images} --annotations {annotations} --out {store.path}"
    )
    if dataset is not None:
        _check_geometry(store, dataset, fix)
    recorded = store.attrs["sources"].get("annotations_sha256")
    if (
        recorded is not None
        and store.attrs["settings"]["algorithm_version"] == ALGORITHM_VERSION  # else every hash differs
        and recorded == _digest(annotations)
        and (dataset is None or dataset.filenames == store.filenames)
    ):
        stats, digests = store.image_files()
        current = [
            _current_digest(images, name, stat, digest)
            for name, stat, digest in zip(store.filenames, stats, digests, strict=True)
        ]
        _require_fresh(store, [a == b for a, b in zip(current, digests, strict=True)], fix)
        return
    if dataset is None:
        words = read_annotations(annotations)
        dataset = _Sources(images, annotations, [annotation.name for annotation in words], words)
    _check_hashes(store, dataset, fix)


def _recorded_sources(store: TargetStore) -> tuple[Location, Location]:
    """The images and annotation file the store was made from, as it records them."""
    sources = store.attrs["sources"]
    images, annotations = Location.of(sources["images"]), Location.of(sources["annotations"])
    if not images.is_dir() or not annotations.exists():
        raise StoreError(
            f"{store.path}: the sources it was made from are not here ({images}, {annotations}); "
            "pass the dataset to check it against (dataset=UFODataset(...)), or check=False"
        )
    return images, annotations


def _digest(annotations: Location) -> str | None:
    try:
        return hashlib.sha256(annotations.read_bytes()).hexdigest()
    except OSError:
        return None  # the full check says what is wrong with the file


def _current_digest(images: Location, name: str, recorded_stat: np.ndarray, recorded: bytes) -> bytes:
    """The image file's digest as of now: the recorded one while its (size, mtime) is unchanged."""
    try:
        path = image_location(images, name)
        stat = path.stat()
    except (OSError, ImageError):
        return b""  # gone, unreadable or out of the folder: stale
    return recorded if stat == tuple(recorded_stat) else image_digest(read_image_bytes(path))


def _check_geometry(store: TargetStore, dataset: UFODataset, fix: str) -> None:
    if store.pad != dataset.pad:
        raise StoreError(
            f"{store.path}: made with --pad {store.pad}, the dataset pads {dataset.pad}; "
            f"{fix} --pad {dataset.pad} --overwrite"
        )
    if store.size != dataset.size:
        raise StoreError(
            f"{store.path}: made at size {store.size}, the dataset uses {dataset.size}; "
            f"{fix} --size {dataset.size} --overwrite"
        )


def _check_hashes(store: TargetStore, dataset: UFODataset | _Sources, fix: str) -> None:
    """The full check: file list, then every entry's content hash against the dataset's."""
    if store.filenames != dataset.filenames:
        missing = sorted(set(dataset.filenames) - set(store.filenames))
        extra = sorted(set(store.filenames) - set(dataset.filenames))
        detail = (
            f"{len(missing)} images not in the store (e.g. {missing[:3]}), "
            f"{len(extra)} not in the dataset (e.g. {extra[:3]})"
        )
        if not missing and not extra:
            detail = "the same images in another order"
        raise StoreError(f"{store.path}: does not match {dataset.annotations_path}: {detail}; {fix}")
    settings = settings_digest(store.settings)
    current = current_hashes(dataset.images, dataset.annotations, settings, *store.image_files())
    _require_fresh(store, [a == b for a, b in zip(store.content_hashes(), current, strict=True)], fix)


def _require_fresh(store: TargetStore, fresh: list[bool], fix: str) -> None:
    """Raise unless every entry is done and ``fresh``, naming those that are not."""
    done, misplaced = store.done(), set(store.misplaced())
    swapped = [store.filenames[index] for index in sorted(misplaced)]
    never = [name for index, name in enumerate(store.filenames) if not done[index] and index not in misplaced]
    stale = [name for name, ok, flag in zip(store.filenames, fresh, done, strict=True) if flag and not ok]
    if never or stale or swapped:
        parts = []
        if swapped:
            disagree = f"its file list and its entries disagree: {_some(swapped)}"
            parts.append(f"{len(swapped)} hold another image's targets ({disagree})")
        if never:
            were = "was" if len(never) == 1 else "were"
            parts.append(f"{len(never)} {were} never completed (image failed, or run interrupted: {_some(never)})")
            fix += (  # a rerun finishes an interrupted run, not an image that fails: say the ways out
                f"; an image that failed ({store.path}.failures.json says why) fails again until it is mended or "
                "dropped from the annotation file, or pass check=False to serve the other entries"
            )
        if stale:
            are = "is" if len(stale) == 1 else "are"
            parts.append(f"{len(stale)} {are} stale (image or words changed since precompute: {_some(stale)})")
        raise StoreError(f"{store.path}: of its {len(store)} entries, {' and '.join(parts)}; {fix}")


def _some(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def current_hashes(
    images: str | Path | Location,
    annotations: list[ImageAnnotation],
    settings: str,
    stats: np.ndarray,
    digests: list[bytes],
) -> list[str]:
    """Each image's content hash as of now, reading only the files whose (size, mtime) differs
    from ``stats`` (what the store recorded, with each file's ``digests``): a check that costs a
    stat per image, not a read of every byte. ``verify`` and the job hash every file in full."""
    folder = Location.of(images)
    current = (
        _current_digest(folder, annotation.name, stat, digest)
        for annotation, stat, digest in zip(annotations, stats, digests, strict=True)
    )
    return [  # a file gone or unreadable has no hash: stale
        content_hash(digest, annotation, settings) if digest else ""
        for annotation, digest in zip(annotations, current, strict=True)
    ]
