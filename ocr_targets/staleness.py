"""Whether a store serves a dataset as it is now: the check a training job makes once, when its
collate is made, at the cost of a stat per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import UFODataset
from .hashing import content_hash, image_digest, settings_digest
from .images import read_image_bytes
from .location import Location
from .store import StoreError, TargetStore
from .ufo import ImageAnnotation


def recorded_dataset(store: TargetStore) -> UFODataset:
    """The dataset the store was made from, as it records it."""
    sources = store.attrs["sources"]
    images, annotations = Path(sources["images"]), Path(sources["annotations"])
    if not images.is_dir() or not annotations.is_file():
        raise StoreError(
            f"{store.path}: the sources it was made from are not here ({images}, {annotations}); "
            "pass the dataset to check it against (dataset=UFODataset(...)), or check=False"
        )
    return UFODataset(images, annotations, size=store.size, pad=store.pad)


def check_store(dataset: UFODataset, store: TargetStore) -> None:
    """Raise StoreError, saying what differs and how to fix it, unless ``store`` serves ``dataset``."""
    fix = (
        f"bring it up to date with: ocr-targets precompute --images {dataset.images} "
        f"--annotations {dataset.annotations_path} --out {store.path}"
    )
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
    done = store.done()
    stored = store.content_hashes()
    settings = settings_digest(store.settings)
    current = current_hashes(dataset.images, dataset.annotations, settings, *store.image_files())
    never = [name for name, flag in zip(dataset.filenames, done, strict=True) if not flag]
    stale = [name for name, a, b, d in zip(dataset.filenames, stored, current, done, strict=True) if d and a != b]
    if never or stale:
        parts = []
        if never:
            were = "was" if len(never) == 1 else "were"
            parts.append(f"{len(never)} {were} never completed (image failed, or run interrupted: {_some(never)})")
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
    hashes, folder = [], Location.of(images)
    for annotation, (size, mtime), digest in zip(annotations, stats, digests, strict=True):
        path = folder / annotation.name
        try:
            stat = path.stat()
        except OSError:
            hashes.append("")  # gone or unreadable: stale
            continue
        if stat != (size, mtime):
            digest = image_digest(read_image_bytes(path))
        hashes.append(content_hash(digest, annotation, settings))
    return hashes
