"""Training stacks: each one's target algorithm and the transform its targets are made after, as
one named thing. "DB targets" are one algorithm per stack (their maps differ by thousands to
hundreds of thousands of pixels on the same pages), so each stack's targets equal its own
released code, bit for bit, and are tested against it.

A store is made for one stack (``StoreSettings.stack``): the job, ``verify`` and ``show`` bring
each image to the stack's validation geometry and compute its targets through the stack's
:class:`Pipeline`. A stack is one row of :data:`STACKS` plus its modules.

A stack's modules are imported only when it is loaded: PaddleOCR's and docTR's need shapely,
which both of those stacks install and the baseline does not.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..choices import NO_PAD, PAD_MODES

if TYPE_CHECKING:
    from ..config import TargetConfig
    from ..images import Sample
    from ..location import Location
    from ..maps import Targets
    from ..ufo import ImageAnnotation

BASELINE = "baseline"  # the stack a store is made for unless told otherwise, and every store made before stacks


class Pipeline(Protocol):
    """A stack's deterministic validation transform and its target algorithm: what a store made
    for the stack holds is ``targets(sample(...))`` for each image, and what ``verify`` compares
    it with is ``reference(sample(...))``."""

    relative_words: bool  # whether its stored words are relative to the side (else in target pixels)

    def sample(
        self, images: Location, annotation: ImageAnnotation, size: int, pad: str, pixels: bool = True
    ) -> Sample: ...

    def targets(self, sample: Sample, config: TargetConfig) -> Targets: ...

    def reference(self, sample: Sample, config: TargetConfig) -> Targets: ...

    def geometry(self, pad: str) -> dict[str, str]:
        """Its transform in words, as a store records it: ``resize``, ``pad``, ``polygons``."""
        ...


@dataclass(frozen=True)
class Stack:
    name: str
    oracle: str  # the released code its targets equal bit for bit: what its tests import
    targets: tuple[str, ...]  # "module:attribute" of its target makers, in the order the stack runs them
    pipeline: str | None  # "module:attribute" of its Pipeline; None: no deterministic transform precedes its targets
    pads: tuple[str, ...]  # where its transform can put the resized image (--pad), its own default first
    where: str  # where the stack makes its targets, after what

    def load(self) -> tuple[object, ...]:
        """The target makers, imported."""
        return tuple(_attribute(path) for path in self.targets)

    def load_pipeline(self, **options: object) -> Pipeline:
        """The stack's Pipeline, made with a store's ``stack_options``: what a store made for it is computed with."""
        if self.pipeline is None:
            raise ValueError(f"the {self.name} stack has no store: it makes its targets {self.where}")
        return _attribute(self.pipeline)(**options)


STACKS = {
    stack.name: stack
    for stack in [
        Stack(
            BASELINE,
            "the competition baseline's DBCollateFN (tests/oracle.py states it)",
            ("ocr_targets.maps:compute_targets",),
            "ocr_targets.stacks.baseline:Baseline",
            PAD_MODES,
            "in its collate function, every batch, validation included, after the letterbox",
        ),
        Stack(
            "paddleocr",
            "paddleocr==2.10.0: ppocr/data/imaug/make_border_map.py, make_shrink_map.py",
            ("ocr_targets.stacks.paddle:MakeBorderMap", "ocr_targets.stacks.paddle:MakeShrinkMap"),
            "ocr_targets.stacks.paddle_pipeline:PaddlePipeline",  # its configs with Resize for the random ops
            (NO_PAD,),
            "in two ops of the training transform list, after its random augmentation and crop; "
            "evaluation builds no targets",
        ),
        Stack(
            "doctr",
            "python-doctr==1.1.0: doctr/models/detection/differentiable_binarization/base.py",
            ("ocr_targets.stacks.doctr:build_target",),
            "ocr_targets.stacks.doctr_pipeline:DoctrPipeline",
            ("center",),
            "inside the model's loss, every step, validation included, after its resize with symmetric padding",
        ),
    ]
}


STORED = tuple(name for name, row in STACKS.items() if row.pipeline)  # the stacks a store can be made for


def pipeline(name: str, **options: object) -> Pipeline:
    """The Pipeline of the stack called ``name``, made with ``options`` (a store's ``stack_options``)."""
    return stack(name).load_pipeline(**options)


def stack(name: str) -> Stack:
    """The stack called ``name``."""
    try:
        return STACKS[name]
    except KeyError:
        raise ValueError(f"unknown training stack {name!r}: one of {', '.join(STACKS)}") from None


def _attribute(path: str) -> object:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)
