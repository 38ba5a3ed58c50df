"""The training stacks' own target code, loaded from their released packages: the oracle of the
stack tests and the other side of the benchmark. Nothing of it is copied here: each module is
executed from the installed package's own files.

A missing or other release raises (the tests fail, they do not skip): ``make install``
installs both, without their frameworks.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import types
import warnings
from functools import cache
from pathlib import Path
from unittest.mock import patch

import numpy as np

PADDLEOCR, DOCTR = "2.10.0", "1.1.0"


@cache
def paddle_ops() -> tuple[type, type]:
    """PaddleOCR 2.10's ``MakeBorderMap`` and ``MakeShrinkMap``, loaded from the wheel's two files
    (they import only numpy, OpenCV, shapely and pyclipper, so paddlepaddle is not needed)."""
    _check_version("paddleocr", PADDLEOCR)
    folder = _package_folder("paddleocr") / "ppocr" / "data" / "imaug"
    # make_border_map sets numpy's error state and the warnings filter for the whole process on
    # import: keep both as they were.
    with np.errstate(), warnings.catch_warnings():
        border = _load_file("paddle_make_border_map", folder / "make_border_map.py")
        shrink = _load_file("paddle_make_shrink_map", folder / "make_shrink_map.py")
    return border.MakeBorderMap, shrink.MakeShrinkMap


@cache
def paddle_label_ops() -> tuple[type, type, type]:
    """PaddleOCR 2.10's ``DecodeImage``, ``DetLabelEncode`` and ``Resize``: what its det configs run
    before the target ops, once the random ones are taken out. ``operators.py`` imports only
    OpenCV, numpy and PIL; ``label_ops.py`` also imports a logger (from paddlepaddle) and a VQA
    helper that ``DetLabelEncode`` never calls, which stand-ins replace while it loads."""
    _check_version("paddleocr", PADDLEOCR)
    folder = _package_folder("paddleocr") / "ppocr" / "data" / "imaug"
    operators = _load_file("paddle_operators", folder / "operators.py")
    stand_ins = {
        "ppocr.utils.logging": _stand_in("ppocr.utils.logging", "get_logger"),
        "ppocr.data.imaug.vqa.augment": _stand_in("ppocr.data.imaug.vqa.augment", "order_by_tbyx"),
    }
    with patch.dict(sys.modules, stand_ins):
        labels = _load_file("paddle_label_ops", folder / "label_ops.py")
    return operators.DecodeImage, labels.DetLabelEncode, operators.Resize


@cache
def doctr_dbnet() -> type:
    """docTR 1.1's ``_DBNet`` (``build_target`` and its helpers), from the installed package.

    Its parent packages' ``__init__`` files import torchvision and the whole model zoo; they are
    stood in for by empty packages over the same folders, so that only ``base.py`` and what it
    imports (``doctr.utils``, ``doctr.models.detection.core``) run.
    """
    _check_version("python-doctr", DOCTR)
    root = _package_folder("doctr")
    parents = ["doctr", "doctr.models", "doctr.models.detection", "doctr.models.detection.differentiable_binarization"]
    for name in parents:
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            sys.modules[name] = package
    return importlib.import_module("doctr.models.detection.differentiable_binarization.base")._DBNet


def _check_version(distribution: str, version: str) -> None:
    found = importlib.metadata.version(distribution)  # PackageNotFoundError: run `make install`
    if found != version:
        raise RuntimeError(f"the oracle is {distribution}=={version}, found {found}: run `make install`")


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{name} is not installed: run `make install`")
    return Path(spec.submodule_search_locations[0])


def _stand_in(module: str, *names: str) -> types.ModuleType:
    """A module whose ``names`` raise if called: for imports the code loaded never uses."""
    stand_in = types.ModuleType(module)

    def unused(*args, **kwargs):
        raise RuntimeError(f"{module} is a stand-in: paddlepaddle is not installed")

    for name in names:
        setattr(stand_in, name, unused)
    return stand_in


def _load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
