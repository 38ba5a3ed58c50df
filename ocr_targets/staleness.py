"""Whether a store serves a dataset as it is now: the check a training job makes once, when its
collate is made, at the cost of a stat per image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .config import ALGORITHM_VERSION
from .hashing import content_hash, settings_digest
from .sources import Sources
from .store import StoreError, TargetStore
from .ufo import ImageAnnotation, read_annotations

if TYPE_CHECKING:
    from .dataset import UFODataset


def check_store(store: TargetStore, dataset: UFODataset | None = None) -> None:
    """Raise StoreError, saying what differs and how to fix it, unless ``store`` serves ``dataset``
    (by default, the dataset the store records it was made from).

    When the annotation file's bytes are those the store recorded, its words and file list are
    too: the images are stat'ed and only those whose size or mtime changed are read, and no
    word is parsed or hashed. Otherwise every entry's content hash is taken anew."""
    sources = _recorded_sources(store) if dataset is None else dataset.sources
    if dataset is not None:
        _check_geometry(store, dataset, sources)
    fix = f"bring it up to date with: {sources.precompute(store)}"
    recorded = store.attrs["sources"].get("annotations_sha256")
    if (
        recorded is not None
        and store.attrs["settings"]["algorithm_version"] == ALGORITHM_VERSION  # else every hash differs
        and recorded == sources.annotations_digest()
        and (dataset is None or dataset.filenames == store.filenames)
    ):
        stats, digests = store.image_files()
        current = [
            sources.current_digest(name, stat, digest)
            for name, stat, digest in zip(store.filenames, stats, digests, strict=True)
        ]
        _require_fresh(store, [a == b for a, b in zip(current, digests, strict=True)], fix)
        return
    words = read_annotations(sources.annotations) if dataset is None else dataset.annotations
    _check_hashes(store, sources, words, fix)


def _recorded_sources(store: TargetStore) -> Sources:
    """The images and annotation file the store was made from, as it records them."""
    sources = Sources.recorded(store)
    if not sources.images.is_dir() or not sources.annotations.exists():
        raise StoreError(
            f"{store.path}: the sources it was made from are not here ({sources.images}, {sources.annotations}); "
            "pass the dataset to check it against (dataset=UFODataset(...)), or check=False"
        )
    return sources


def _check_geometry(store: TargetStore, dataset: UFODataset, sources: Sources) -> None:
    if store.pad != dataset.pad:
        raise StoreError(
            f"{store.path}: made with --pad {store.pad}, the dataset pads {dataset.pad}; "
            f"remake it with: {sources.precompute(store, pad=dataset.pad)}"
        )
    if store.size != dataset.size:
        raise StoreError(
            f"{store.path}: made at size {store.size}, the dataset uses {dataset.size}; "
            f"remake it with: {sources.precompute(store, size=dataset.size)}"
        )


def _check_hashes(store: TargetStore, sources: Sources, annotations: list[ImageAnnotation], fix: str) -> None:
    """The full check: file list, then every entry's content hash against the dataset's."""
    filenames = [annotation.name for annotation in annotations]
    if store.filenames != filenames:
        missing = sorted(set(filenames) - set(store.filenames))
        extra = sorted(set(store.filenames) - set(filenames))
        detail = (
            f"{len(missing)} images not in the store (e.g. {missing[:3]}), "
            f"{len(extra)} not in the dataset (e.g. {extra[:3]})"
        )
        if not missing and not extra:
            detail = "the same images in another order"
        raise StoreError(f"{store.path}: does not match {sources.annotations}: {detail}; {fix}")
    settings = settings_digest(store.settings)
    current = current_hashes(sources, annotations, settings, *store.image_files())
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
    sources: Sources,
    annotations: list[ImageAnnotation],
    settings: str,
    stats: np.ndarray,
    digests: list[bytes],
) -> list[str]:
    """Each image's content hash as of now, reading only the files whose (size, mtime) differs
    from ``stats`` (what the store recorded, with each file's ``digests``): a check that costs a
    stat per image, not a read of every byte. ``verify`` and the job hash every file in full."""
    current = (
        sources.current_digest(annotation.name, stat, digest)
        for annotation, stat, digest in zip(annotations, stats, digests, strict=True)
    )
    return [  # a file gone or unreadable has no hash: stale
        content_hash(digest, annotation, settings) if digest else ""
        for annotation, digest in zip(annotations, current, strict=True)
    ]
