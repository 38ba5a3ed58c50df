"""docTR 1.1's stack as a store's :class:`~ocr_targets.stacks.Pipeline`: its validation
geometry (:mod:`.doctr_geometry`) and its ``_DBNet.build_target`` at the input size (DBNet's
output is the size of its input), for one class of words.

What :class:`~ocr_targets.config.TargetConfig` means here: ``shrink_ratio``, ``thresh_min`` and
``thresh_max`` are the model's attributes of those names (the defaults are docTR's too);
``min_size_box`` is docTR's class attribute, 3, which no docTR constructor sets. docTR has no
ignore flag: every word is drawn, and the store keeps the flags it was given as they were.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..config import TargetConfig
from ..doctr_labels import CLASS_NAME
from ..images import Sample, decode_image, image_location, read_image_file
from ..location import Location
from ..maps import Targets
from ..ufo import ImageAnnotation
from .doctr import build_target
from .doctr_geometry import SymmetricResize, boxes_of, corners, relative_boxes
from .released import doctr_dbnet

MIN_SIZE_BOX = 3  # _DBNet.min_size_box (doctr/models/detection/differentiable_binarization/base.py)


def parameters(config: TargetConfig) -> dict[str, float]:
    """The attributes of a docTR DBNet whose ``build_target`` makes the targets of ``config``."""
    return {
        "shrink_ratio": config.shrink_ratio,
        "thresh_min": config.thresh_min,
        "thresh_max": config.thresh_max,
        "min_size_box": MIN_SIZE_BOX,
    }


def page(words: list[np.ndarray]) -> dict[str, np.ndarray]:
    """A stored entry's words as docTR's dataset hands its page to the loss: ``{"words": boxes}``,
    or ``{}`` for no words (``pre_transform_multiclass`` makes a key per class present)."""
    boxes = boxes_of(words)
    return {CLASS_NAME: boxes} if len(boxes) else {}


class DoctrPipeline:
    """Its words in a store are the (4, 2) float32 corners of the boxes docTR's ``build_target``
    receives, relative to the side (``relative_words``); it holds no shrunk polygons, since
    docTR's ``build_target`` gives none out."""

    relative_words = True

    def sample(self, images: Location, annotation: ImageAnnotation, size: int, pad: str, pixels: bool = True) -> Sample:
        """``pad`` is docTR's one, ``"center"`` (its symmetric padding)."""
        path = image_location(images, annotation.name)
        data, file_stat = read_image_file(path)
        decoded = decode_image(data, path, pixels)
        resize = SymmetricResize(decoded.size, size)
        words = corners(resize.boxes(relative_boxes(annotation.polygons, decoded.size)))
        orientation, ignore = decoded.orientation, list(annotation.ignore)
        return Sample(annotation, data, file_stat, decoded.pixels, orientation, resize, words, ignore, 0)

    def targets(self, sample: Sample, config: TargetConfig) -> Targets:
        """Our :func:`~ocr_targets.stacks.doctr.build_target`."""
        model = SimpleNamespace(**parameters(config))
        return _targets(build_target(model, [page(sample.polygons)], _shape(sample)))

    def reference(self, sample: Sample, config: TargetConfig) -> Targets:
        """docTR's own ``_DBNet.build_target``, from the released package."""
        model = doctr_dbnet()()
        vars(model).update(parameters(config))
        with np.errstate(all="ignore"):  # docTR's own arithmetic warns on degenerate words
            return _targets(model.build_target([page(sample.polygons)], _shape(sample)))

    def geometry(self, pad: str) -> dict[str, str]:
        return {
            "resize": "docTR's Resize((size, size), preserve_aspect_ratio=True, symmetric_pad=True): EXIF orientation "
            "applied, longer side to size, the other int(size * ratio) (at least 1)",
            "pad": "zeros to size x size, ceil(pad / 2) before",
            "polygons": "docTR's boxes: each word's min and max, relative to the image, moved by the resize and "
            "clipped to [0, 1] (float32); stored as their four corners",
        }


def _shape(sample: Sample) -> tuple[int, int, int]:
    return 1, sample.letterbox.size, sample.letterbox.size


def _targets(built: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> Targets:
    seg_target, seg_mask, thresh_target, thresh_mask = (array[0, 0] for array in built)
    return Targets(seg_target, thresh_target, seg_mask.astype(np.uint8), thresh_mask.astype(np.uint8), [])
