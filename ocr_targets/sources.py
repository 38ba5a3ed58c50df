"""A dataset's sources: its images folder and its annotation file, local paths or fsspec URLs
with the storage options that reach them, and what they hold now (each image's file and digest,
whether it changed since a store recorded it).

One place, torch-free: the job, ``verify``, ``show``, the staleness check, the collate and both
datasets find their sources here, and the sources a store records are reopened with the store's
own storage options.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .hashing import image_digest
from .images import ImageError, image_location, read_image_bytes
from .location import Location

if TYPE_CHECKING:
    from .store import TargetStore


@dataclass(frozen=True)
class Sources:
    images: Location  # the folder the annotation file's image names are relative to
    annotations: Location  # the annotation file

    @classmethod
    def of(
        cls, images: str | Path | Location, annotations: str | Path | Location, options: dict[str, Any] | None = None
    ) -> Sources:
        return cls(Location.of(images, options), Location.of(annotations, options))

    @classmethod
    def recorded(
        cls,
        store: TargetStore,
        images: str | Path | Location | None = None,
        annotations: str | Path | Location | None = None,
    ) -> Sources:
        """The sources ``store`` was made from, reached with the store's storage options; either
        one given instead where it has moved."""
        recorded = store.attrs["sources"]
        return cls.of(images or recorded["images"], annotations or recorded["annotations"], store.location.options)

    def record(self, annotations_digest: str) -> dict[str, str]:
        """What a store records of its sources: where they are, and the annotation file's digest,
        by which a check finds the file unchanged without parsing it."""
        return {
            "images": self.images.url,
            "annotations": self.annotations.url,
            "annotations_sha256": annotations_digest,
        }

    def precompute(self, store: TargetStore, **changes: Any) -> str:
        """The command that brings ``store`` up to date with these sources, with the options it was
        made with (a rerun with others is refused), or with ``changes`` to its settings, which
        remake it whole (``--overwrite``)."""
        options = replace(store.settings, **changes).options(*changes)
        return " ".join(
            ["ocr-targets precompute", "--images", str(self.images), "--annotations", str(self.annotations)]
            + ["--out", str(store.path), *options, *(["--overwrite"] if changes else [])]
        )

    def annotations_digest(self) -> str | None:
        """The SHA-256 of the annotation file as it is now; None if it cannot be read (the full
        parse says why)."""
        try:
            return hashlib.sha256(self.annotations.read_bytes()).hexdigest()
        except OSError:
            return None

    def image(self, name: str) -> Location:
        """The file of the image ``name``; ImageError for a name that leads out of the folder."""
        return image_location(self.images, name)

    def has_image(self, name: str) -> bool:
        try:
            return self.image(name).exists()
        except ImageError:
            return False  # a name that leads out of the folder is not looked for

    def image_digest(self, name: str) -> bytes:
        """The digest of the image file's bytes, read in full."""
        return image_digest(read_image_bytes(self.image(name)))

    def current_digest(self, name: str, recorded_stat: np.ndarray, recorded: bytes) -> bytes:
        """The image file's digest as of now: the ``recorded`` one while its (size, mtime) is the
        recorded one, else read anew; empty for a file gone, unreadable or out of the folder."""
        try:
            path = self.image(name)
            stat = path.stat()
        except (OSError, ImageError):
            return b""
        return recorded if stat == tuple(recorded_stat) else image_digest(read_image_bytes(path))
