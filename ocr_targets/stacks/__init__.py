"""Training stacks: each one's target algorithm and the transform its targets are made after, as
one named thing. "DB targets" are one algorithm per stack (their maps differ by thousands to
hundreds of thousands of pixels on the same pages), so each stack's targets equal its own
released code, bit for bit, and are tested against it.

A stack's modules are imported only when it is loaded: PaddleOCR's and docTR's need shapely,
which both of those stacks install and the baseline does not.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Stack:
    name: str
    oracle: str  # the released code its targets equal bit for bit: what its tests import
    targets: tuple[str, ...]  # "module:attribute" of its target makers, in the order the stack runs them
    transform: str | None  # "module:attribute" of its deterministic validation transform, where this project has one
    where: str  # where the stack makes its targets, after what

    def load(self) -> tuple[object, ...]:
        """The target makers, imported."""
        return tuple(_attribute(path) for path in self.targets)


STACKS = {
    stack.name: stack
    for stack in [
        Stack(
            "baseline",
            "the competition baseline's DBCollateFN (tests/oracle.py states it)",
            ("ocr_targets.maps:compute_targets",),
            "ocr_targets.geometry:Letterbox",
            "its collate function, every batch, validation included, after the letterbox",
        ),
        Stack(
            "paddleocr",
            "paddleocr==2.10.0: ppocr/data/imaug/make_border_map.py, make_shrink_map.py",
            ("ocr_targets.stacks.paddle:MakeBorderMap", "ocr_targets.stacks.paddle:MakeShrinkMap"),
            None,
            "two ops of the training transform list, after its random augmentation and crop; "
            "evaluation builds no targets",
        ),
        Stack(
            "doctr",
            "python-doctr==1.1.0: doctr/models/detection/differentiable_binarization/base.py",
            ("ocr_targets.stacks.doctr:build_target",),
            None,
            "inside the model's loss, every step, validation included, after its resize with symmetric padding",
        ),
    ]
}


def stack(name: str) -> Stack:
    """The stack called ``name``."""
    try:
        return STACKS[name]
    except KeyError:
        raise ValueError(f"unknown training stack {name!r}: one of {', '.join(STACKS)}") from None


def _attribute(path: str) -> object:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)
