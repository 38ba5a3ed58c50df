"""What a PaddleOCR det config asks of a store: its transform list read op by op up to the target
ops, and either the store's settings or the op that keeps a store from holding its targets.

A store holds one set of targets per image, so every op before the target ops must be one
ocr-targets reproduces (``DecodeImage``, ``DetLabelEncode``, ``Resize`` to a square); a random op
(augmentation, a random crop) draws other targets every epoch and is refused by name, as is any
other. The ops after the target ops (``NormalizeImage``, ``ToCHWImage``, ``KeepKeys``) do not
change the targets. PaddleOCR passes its ``Global`` section to every op, and so does this.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from ..config import TargetConfig
from ..errors import InputError
from .paddle_pipeline import PaddlePipeline

# PaddleOCR 2.10's ops that draw at random (ppocr/data/imaug: iaa_augment, random_crop_data,
# copy_paste, ColorJitter, randaugment, rec_img_aug, abinet_aug, ssl_img_aug, fce_aug, ct_process,
# east_process, sast_process, pg_process).
RANDOM_OPS = frozenset(
    "IaaAugment EastRandomCropData RandomCropImgMask CopyPaste ColorJitter RandAugment RecAug RecConAug "
    "BaseDataAugmentation ABINetRecAug SVTRRecAug ParseQRecAug SSLRotateResize RandomScaling RandomCropFlip "
    "RandomCropPolyInstances RandomRotatePolyInstances SquareResizePad RandomScale GroupRandomHorizontalFlip "
    "GroupRandomRotate GroupRandomCropPadding EASTProcessTrain SASTProcessTrain PGProcessTrain".split()
)
BEFORE = ("DecodeImage", "DetLabelEncode", "Resize")  # the ops before the targets that a store reproduces
TARGET_OPS = ("MakeBorderMap", "MakeShrinkMap")


class PaddleConfigError(InputError):
    """A PaddleOCR config that no store can be made after: ``where`` the config file, ``op`` the
    op at fault (None: the file itself)."""

    def __init__(self, config: object, problem: str, op: str | None = None) -> None:
        super().__init__(config, problem)
        self.config, self.op = str(config), op

    def __reduce__(self) -> tuple:
        return type(self), (self.config, self.problem, self.op)


class RandomOp(PaddleConfigError):
    """An op that draws at random before the target ops: each epoch's targets differ."""

    def __init__(self, config: object, section: str, op: str) -> None:
        super().__init__(
            config,
            f"{section}.dataset.transforms has {op}, a random op before the target ops: its targets differ every "
            f"epoch, so a store cannot hold them; for a store, replace the random ops by Resize: {{size: [S, S]}}",
            op,
        )
        self.section = section

    def __reduce__(self) -> tuple:
        return type(self), (self.config, self.section, self.op)


@dataclass(frozen=True)
class PaddleConfig:
    """What the config's transforms ask of a store."""

    size: int  # Resize's square side
    targets: TargetConfig  # MakeBorderMap's and MakeShrinkMap's DB parameters
    pipeline: PaddlePipeline  # the ops' other settings

    @property
    def stack_options(self) -> dict[str, Any]:
        """``StoreSettings.stack_options``: the pipeline's settings that differ from PaddleOCR's defaults."""
        return {
            item.name: getattr(self.pipeline, item.name)
            for item in fields(self.pipeline)
            if getattr(self.pipeline, item.name) != item.default
        }


def read_paddle_config(argument: str) -> PaddleConfig:
    """``FILE`` or ``FILE:SECTION`` (``Train`` unless named): the section's ``dataset.transforms``
    read; PaddleConfigError (RandomOp for a random op) names the file and the op."""
    path, section = _split(argument)
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise PaddleConfigError(path, f"cannot read the config: {error.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise PaddleConfigError(path, f"not a YAML file: {error}") from None
    transforms = ((document or {}).get(section) or {}).get("dataset", {}).get("transforms")
    if not isinstance(transforms, list):
        raise PaddleConfigError(path, f"has no {section}.dataset.transforms list")
    shared = document.get("Global") or {}
    ops = []
    for item in transforms:
        if not isinstance(item, dict) or len(item) != 1:
            raise PaddleConfigError(path, f"{section}.dataset.transforms: {item!r} is not one op {{Name: params}}")
        ((name, params),) = item.items()
        ops.append((name, {**(params or {}), **shared}))  # PaddleOCR's create_operators: Global over the op's own
    return _settings(path, section, ops)


def _split(argument: str) -> tuple[str, str]:
    path, colon, section = argument.rpartition(":")
    if colon and section and "/" not in section and not Path(argument).exists():
        return path, section
    return argument, "Train"


def _settings(path: str, section: str, ops: list[tuple[str, dict]]) -> PaddleConfig:
    """The store's settings from the ops up to the target ops, in PaddleOCR's order."""
    where = f"{section}.dataset.transforms"
    found: dict[str, dict] = {}
    for name, params in ops:
        if name == "MakeShrinkMap" and "MakeBorderMap" not in found:
            raise PaddleConfigError(path, f"{where} runs MakeShrinkMap before MakeBorderMap", name)
        if name in TARGET_OPS:
            found[name] = params
            if name == "MakeShrinkMap":
                break
        elif "MakeBorderMap" in found:
            raise PaddleConfigError(path, f"{where} has {name} between the target ops", name)
        elif name in RANDOM_OPS:
            raise RandomOp(path, section, name)
        elif name in BEFORE:
            found[name] = params
        else:
            raise PaddleConfigError(
                path, f"{where} has {name} before the target ops, not one ocr-targets reproduces", name
            )
    else:
        raise PaddleConfigError(path, f"{where} has no MakeBorderMap and MakeShrinkMap: it makes no DB targets")
    return PaddleConfig(
        _square(path, where, found.get("Resize")),
        _db_parameters(path, where, found["MakeBorderMap"], found["MakeShrinkMap"]),
        PaddlePipeline(
            int(found["MakeShrinkMap"].get("min_text_size", 8)),
            bool(found.get("DecodeImage", {}).get("ignore_orientation", False)),
        ),
    )


def _square(path: str, where: str, params: dict | None) -> int:
    if params is None:
        raise PaddleConfigError(
            path, f"{where} has no Resize: a store holds square targets; add Resize: {{size: [S, S]}}"
        )
    size = params.get("size", (640, 640))
    if not isinstance(size, (list, tuple)) or len(size) != 2 or size[0] != size[1] or int(size[0]) != size[0]:
        raise PaddleConfigError(
            path, f"Resize size {size!r} is not a square [S, S]: a store holds square targets", "Resize"
        )
    if size[0] < 32:
        raise PaddleConfigError(path, f"Resize size {size!r}: a store's side is at least 32", "Resize")
    return int(size[0])


def _db_parameters(path: str, where: str, border: dict, shrink: dict) -> TargetConfig:
    for op, params in (("MakeBorderMap", border), ("MakeShrinkMap", shrink)):
        if "total_epoch" in params and "epoch" in params and params["epoch"] != "None":
            raise PaddleConfigError(path, f"{op}'s shrink_ratio grows with the epoch: a store holds one", op)
    ratios = border.get("shrink_ratio", 0.4), shrink.get("shrink_ratio", 0.4)
    if ratios[0] != ratios[1]:
        raise PaddleConfigError(
            path, f"MakeBorderMap's shrink_ratio {ratios[0]} and MakeShrinkMap's {ratios[1]} differ: a store holds one"
        )
    try:
        return TargetConfig(ratios[0], border.get("thresh_min", 0.3), border.get("thresh_max", 0.7))
    except ValueError as error:
        raise PaddleConfigError(path, f"{where}: {error}") from None
