"""The competition baseline's stack: its validation letterbox (:func:`ocr_targets.images.load_sample`,
the seven rules of ``docs/parity.md``) and its collate's DB targets (:mod:`ocr_targets.maps`)."""

from __future__ import annotations

from ..config import TargetConfig
from ..images import Sample, load_sample
from ..location import Location
from ..maps import Targets, compute_targets, reference_targets
from ..ufo import ImageAnnotation


class Baseline:
    relative_words = False

    def sample(self, images: Location, annotation: ImageAnnotation, size: int, pad: str, pixels: bool = True) -> Sample:
        return load_sample(images, annotation, size, pad, pixels)

    def targets(self, sample: Sample, config: TargetConfig) -> Targets:
        return sample.targets(config, compute_targets)

    def reference(self, sample: Sample, config: TargetConfig) -> Targets:
        return sample.targets(config, reference_targets)

    def geometry(self, pad: str) -> dict[str, str]:
        return {
            "resize": "longest side to size, linear interpolation, sides rounded",
            "pad": "zeros to size x size, " + ("centered" if pad == "center" else "at the bottom and right"),
            "polygons": "rounded to int32, EXIF words made upright, clamped into the image, "
            "moved by the forward matrix, float32; words that vanish dropped",
        }
