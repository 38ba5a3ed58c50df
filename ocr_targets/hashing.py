"""Content hashes: what decides whether a stored entry is still valid."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .config import ALGORITHM_VERSION
from .store import StoreSettings
from .ufo import ImageAnnotation


def settings_digest(settings: StoreSettings) -> str:
    """What is the same for every image and shapes its targets: the settings that shape them
    (:meth:`StoreSettings.shaping`: parameters, geometry) and the algorithm version, not how the
    store keeps them (dtype, images, block)."""
    shaping = {"algorithm": ALGORITHM_VERSION, **settings.shaping()}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


def image_digest(image_bytes: bytes) -> bytes:
    """SHA-256 of an image file's bytes (stored, so a check can skip files whose stat is unchanged)."""
    return hashlib.sha256(image_bytes).digest()


def content_hash(image_digest: bytes, annotation: ImageAnnotation, shaping_digest: str) -> str:
    """SHA-256 over the image file's digest (:func:`image_digest`), the words that shape its
    targets, and the run's ``shaping_digest`` (:func:`settings_digest`).

    Transcriptions other than ``###`` do not enter: they do not change a target. Integer points
    (rounded from a UFO file) enter as int32, as ever; float points (a PaddleOCR label file's)
    as their dtype's name and exact bytes, so two float label sets never share a hash.
    """
    digest = hashlib.sha256()
    digest.update(shaping_digest.encode())
    digest.update(image_digest)
    for polygon, ignored in zip(annotation.polygons, annotation.ignore, strict=True):
        digest.update(b"I" if ignored else b"W")
        digest.update(len(polygon).to_bytes(4, "little"))
        digest.update(_point_bytes(polygon))
    return digest.hexdigest()


def _point_bytes(polygon: np.ndarray) -> bytes:
    if polygon.dtype.kind != "f":
        return polygon.astype("<i4").tobytes()
    little = polygon.astype(polygon.dtype.newbyteorder("<"))
    return little.dtype.str.encode() + little.tobytes()  # b"<f4..."
