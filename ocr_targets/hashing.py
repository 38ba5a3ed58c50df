"""Content hashes: what decides whether a stored entry is still valid."""

from __future__ import annotations

import hashlib
import json

from .config import ALGORITHM_VERSION, TargetConfig
from .ufo import ImageAnnotation


def settings_digest(config: TargetConfig, size: int, pad: str) -> str:
    """Everything that is the same for every image: parameters, geometry, algorithm version."""
    settings = {"algorithm": ALGORITHM_VERSION, "config": config.to_dict(), "size": size, "pad": pad}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def image_digest(image_bytes: bytes) -> bytes:
    """SHA-256 of an image file's bytes (stored, so a check can skip files whose stat is unchanged)."""
    return hashlib.sha256(image_bytes).digest()


def content_hash(image: bytes, annotation: ImageAnnotation, settings: str) -> str:
    """SHA-256 over the image file's digest (:func:`image_digest`), the words that shape its
    targets, and the settings.

    Transcriptions other than ``###`` do not enter: they do not change a target.
    """
    digest = hashlib.sha256()
    digest.update(settings.encode())
    digest.update(image)
    for polygon, ignored in zip(annotation.polygons, annotation.ignore, strict=True):
        digest.update(b"I" if ignored else b"W")
        digest.update(len(polygon).to_bytes(4, "little"))
        digest.update(polygon.astype("<i4").tobytes())
    return digest.hexdigest()
