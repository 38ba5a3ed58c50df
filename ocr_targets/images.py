"""Image files: decoding, the one way both the job and the dataset read them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class ImageError(ValueError):
    """An image file that is missing or cannot be decoded."""


def read_image_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: image file not found") from None
    except OSError as error:
        raise ImageError(f"{path}: cannot read image file ({error.strerror})") from None


def decode_image(data: bytes, path: Path) -> np.ndarray:
    """RGB uint8 (H, W, 3), EXIF orientation applied, as the baseline's PIL loading gives."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"{path}: cannot decode image ({len(data)} bytes; not a readable JPEG/PNG/...)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
