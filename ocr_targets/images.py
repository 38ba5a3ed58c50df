"""Image files: decoding, the one way both the job and the dataset read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .config import TargetConfig
from .geometry import Resize
from .maps import Targets, compute_targets
from .ufo import ImageAnnotation


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


@dataclass(frozen=True)
class Sample:
    """One image and its words, brought to the validation geometry."""

    annotation: ImageAnnotation
    data: bytes  # the file's bytes, as hashed
    image: np.ndarray  # RGB uint8, original size
    resize: Resize
    polygons: list[np.ndarray]  # (N, 2) float64, in target coordinates

    def targets(self, config: TargetConfig, compute=compute_targets) -> Targets:
        size = self.resize.size
        return compute((size, size), self.polygons, config, self.annotation.ignore)


def load_sample(images: Path, annotation: ImageAnnotation, size: int) -> Sample:
    """Read, decode and resize one image and its polygons; ImageError names the file."""
    path = images / annotation.name
    data = read_image_bytes(path)
    image = decode_image(data, path)
    resize = Resize(image.shape[:2], size)
    return Sample(annotation, data, image, resize, resize.polygons(annotation.polygons))
