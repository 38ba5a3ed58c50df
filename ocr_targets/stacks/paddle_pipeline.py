"""The PaddleOCR stack's store: its det training transforms with the random ops replaced by its own
``Resize: {size: [S, S]}``: ``DecodeImage``, ``DetLabelEncode``, ``Resize``, ``MakeBorderMap``,
``MakeShrinkMap`` (``ppocr/data/imaug/operators.py``, ``label_ops.py``), step by step as PaddleOCR
2.10 runs them, the target ops ours (:mod:`ocr_targets.stacks.paddle`). The tests run PaddleOCR's
own five on the same files and compare every map and mask.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from ..config import TargetConfig
from ..images import ImageError, Sample, image_location, read_image_file
from ..location import Location
from ..maps import Targets
from ..ufo import ImageAnnotation
from .paddle import MakeBorderMap, MakeShrinkMap

# The type Resize multiplies a float32 point by its Python float ratio in: float64 under numpy 1
# (both are scalars), float32 under numpy 2 (NEP 50: the Python float is weak).
_PRODUCT = (np.float32(1) * 1.0).dtype


@dataclass(frozen=True)
class Stretch:
    """PaddleOCR's ``Resize`` to ``size`` x ``size``: each side scaled on its own, no padding."""

    original_size: tuple[int, int]  # (height, width), as decoded
    size: int

    @property
    def ratios(self) -> tuple[float, float]:
        """(ratio_h, ratio_w), as Resize computes them."""
        height, width = self.original_size
        return float(self.size) / height, float(self.size) / width

    @property
    def matrix(self) -> np.ndarray:
        ratio_h, ratio_w = self.ratios
        return np.diag([ratio_w, ratio_h, 1.0])

    @property
    def inverse_matrix(self) -> np.ndarray:
        height, width = self.original_size
        return np.diag([width / self.size, height / self.size, 1.0])

    def image(self, image: np.ndarray) -> np.ndarray:
        """Resize's ``cv2.resize`` (linear)."""
        return cv2.resize(image, (self.size, self.size))

    def points(self, polys: np.ndarray) -> np.ndarray:
        """Resize's ``[cord[0] * ratio_w, cord[1] * ratio_h]`` made float32: the product in the
        type the running numpy gives it (:data:`_PRODUCT`)."""
        ratio_h, ratio_w = self.ratios
        return (polys.astype(_PRODUCT) * np.array([ratio_w, ratio_h], dtype=_PRODUCT)).astype(np.float32)


@dataclass(frozen=True)
class PaddlePipeline:
    """The PaddleOCR stack's Pipeline. Its fields are the settings of the ops a store records
    beyond the DB parameters (``StoreSettings.stack_options``: the ones that differ from these
    defaults, PaddleOCR's)."""

    min_text_size: int = 8  # MakeShrinkMap's
    ignore_orientation: bool = False  # DecodeImage's
    relative_words = False  # stored in target pixels, as Resize leaves them

    def sample(self, images: Location, annotation: ImageAnnotation, size: int, pad: str, pixels: bool = True) -> Sample:
        """DecodeImage (OpenCV, EXIF orientation applied unless ``ignore_orientation``),
        DetLabelEncode's polygons, Resize. ``pad`` is the stack's one, "none"."""
        path = image_location(images, annotation.name)
        data, file_stat = read_image_file(path)
        image = _decode(data, path, self.ignore_orientation)
        stretch = Stretch(image.shape[:2], size)
        polys = stretch.points(label_polys(annotation.polygons))
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if pixels else None
        return Sample(annotation, data, file_stat, rgb, _orientation(data), stretch, list(polys), annotation.ignore, 0)

    def targets(self, sample: Sample, config: TargetConfig) -> Targets:
        border = MakeBorderMap(config.shrink_ratio, config.thresh_min, config.thresh_max)
        shrink = MakeShrinkMap(self.min_text_size, config.shrink_ratio)
        return as_targets(shrink(border(self.data(sample))))

    def reference(self, sample: Sample, config: TargetConfig) -> Targets:
        """PaddleOCR 2.10's own two ops (the paddleocr wheel must be installed)."""
        from .released import paddle_ops

        border, shrink = paddle_ops()
        with np.errstate(all="ignore"):  # as PaddleOCR's make_border_map sets it
            data = border(config.shrink_ratio, config.thresh_min, config.thresh_max)(self.data(sample))
            return as_targets(shrink(self.min_text_size, config.shrink_ratio)(data))

    def geometry(self, pad: str) -> dict[str, str]:
        return {
            "resize": "each side to size (PaddleOCR's Resize), linear interpolation",
            "pad": "none: the image stretched to the square",
            "polygons": "float32 as PaddleOCR's DetLabelEncode makes them, scaled by Resize",
        }

    @staticmethod
    def data(sample: Sample) -> dict:
        """The data dict as Resize leaves it, for the target ops (they read the image's shape only)."""
        size = sample.letterbox.size
        return {
            "image": np.broadcast_to(np.uint8(0), (size, size, 3)),
            "polys": label_polys(sample.polygons),
            "ignore_tags": np.array(sample.ignore, dtype=np.bool_),
        }


def label_polys(polygons: Sequence[np.ndarray]) -> np.ndarray:
    """DetLabelEncode's ``polys``: every word padded with its last point to the image's most
    points (``expand_points_num``), (N, K, 2) float32."""
    most = max((len(polygon) for polygon in polygons), default=0)
    padded = [np.concatenate([polygon, polygon[-1:].repeat(most - len(polygon), axis=0)]) for polygon in polygons]
    return np.array(padded, dtype=np.float32).reshape(len(polygons), most, 2)


def as_targets(data: dict) -> Targets:
    """The two ops' keys as :class:`Targets` (PaddleOCR's ops give no shrunk polygons)."""
    return Targets(
        data["shrink_map"],
        data["threshold_map"],
        data["shrink_mask"].astype(np.uint8),
        data["threshold_mask"].astype(np.uint8),
        [],
    )


def _decode(data: bytes, path: Location, ignore_orientation: bool) -> np.ndarray:
    """DecodeImage's ``cv2.imdecode``: BGR uint8."""
    flags = cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR if ignore_orientation else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags) if data else None
    if image is None:  # PaddleOCR's DecodeImage returns None: its dataset takes another sample
        raise ImageError(path, "not an image file that OpenCV can decode", f"{len(data)} bytes")
    return image


def _orientation(data: bytes) -> int:
    """The file's EXIF orientation, as recorded (OpenCV applied it already)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return 1
    return orientation if isinstance(orientation, int) else 1
