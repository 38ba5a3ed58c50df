"""docs/stacks.md's doctr store, tried as a docTR user would: photographed receipts laid out as
docTR's validation set (``val/images``, ``val/labels.json``), the store made by the documented
command, then docTR's own ``evaluate`` (imported from ``references/detection/train.py`` of a docTR
1.1 checkout, fed as its ``main`` feeds it: ``DetectionDataset``, ``Resize`` to the input size with
``preserve_aspect_ratio`` and ``symmetric_pad``, ``Normalize``, ``LocalizationConfusion``) runs
``db_resnet50`` (random weights, seeded) three ways: with docTR's ``build_target``, after
``install(model)``, and after ``install(model, "val.zarr")``. Prints the validation loss and
metrics, the store's hits and misses, each way's ``build_target`` time per page, and whether every
target array was equal to docTR's. Needs python-doctr 1.1 with torch, torchvision and matplotlib
(``train.py`` imports it), and ocr-targets::

    python examples/stacks/doctr_store_trial.py DOCTR_CHECKOUT [--images 8] [--size 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

import numpy as np
import torch
from doctr import transforms as T
from doctr.datasets import DetectionDataset
from doctr.models import db_resnet50
from doctr.utils.metrics import LocalizationConfusion
from torch.utils.data import DataLoader, SequentialSampler
from torchvision.transforms.v2 import Normalize

from ocr_targets.stacks.doctr import install

SHAPES = [(1280, 960), (960, 1280), (1100, 1100)]  # portrait, landscape (docTR pads each its own way), square


def validation_set(folder: Path, count: int) -> Path:
    """Photographed receipts (benchmarks/synthetic.py) as docTR's DetectionDataset reads them: ``folder/images``
    and ``folder/labels.json``, each word's four points as written."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.synthetic import write_photos

    images, annotations = write_photos(folder, count, seed=9, shape=SHAPES)
    labels = {}
    for index, (name, entry) in enumerate(json.loads(annotations.read_text())["images"].items()):
        height, width = SHAPES[index % len(SHAPES)]
        labels[name] = {
            "img_dimensions": [width, height],
            "img_hash": hashlib.sha256((images / name).read_bytes()).hexdigest(),
            "polygons": [word["points"] for word in entry["words"].values()],
        }
    annotations.unlink()
    (folder / "labels.json").write_text(json.dumps(labels))
    return folder


def precompute(root: Path, size: int) -> None:
    """docs/stacks.md's command, run in ``root`` by the installed ``ocr-targets``."""
    arguments = ["precompute", "--stack", "doctr", "--size", str(size), "--images", "val/images",
                 "--annotations", "val/labels.json", "--out", "val.zarr"]  # fmt: skip
    print("$ ocr-targets", " ".join(arguments))
    subprocess.run([str(Path(sys.executable).with_name("ocr-targets")), *arguments], cwd=root, check=True)


def doctr_evaluate(checkout: Path):
    """``evaluate`` of docTR's ``references/detection/train.py``."""
    sys.path.insert(0, str(checkout / "references" / "detection"))
    try:
        return importlib.import_module("train").evaluate
    finally:
        sys.path.remove(str(checkout / "references" / "detection"))


class Timed:
    """``model.build_target`` (whichever is installed), timed and its targets kept."""

    def __init__(self, model) -> None:
        self.inner, self.seconds, self.pages, self.targets = model.build_target, 0.0, 0, []
        model.build_target = self

    def __call__(self, target, output_shape):
        start = time.perf_counter()
        built = self.inner(target, output_shape)
        self.seconds += time.perf_counter() - start
        self.pages += len(target)
        self.targets.append(built)
        return built


def run(model, evaluate, root: Path, size: int, batch: int) -> tuple[tuple, Timed]:
    """docTR's validation, as ``train.py``'s ``main`` sets it up without rotation, on ``root/val``."""
    val_set = DetectionDataset(
        img_folder=str(root / "val" / "images"),
        label_path=str(root / "val" / "labels.json"),
        sample_transforms=T.SampleCompose([T.Resize((size, size), preserve_aspect_ratio=True, symmetric_pad=True)]),
        use_polygons=False,
    )
    val_loader = DataLoader(
        val_set, batch_size=batch, drop_last=False, num_workers=0, sampler=SequentialSampler(val_set),
        collate_fn=val_set.collate_fn,
    )  # fmt: skip
    batch_transforms = Normalize(mean=(0.798, 0.785, 0.772), std=(0.264, 0.2749, 0.287))
    timed = Timed(model)
    with torch.no_grad():
        result = evaluate(model, val_loader, batch_transforms, LocalizationConfusion(use_polygons=False),
                          Namespace(rotation=False, eval_straight=False))  # fmt: skip
    model.build_target = timed.inner
    return result, timed


def same(theirs: list, ours: list) -> bool:
    return all(
        x.dtype == y.dtype and np.array_equal(x, y)
        for a, b in zip(theirs, ours, strict=True)
        for x, y in zip(a, b, strict=True)
    )


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", type=Path, help="a docTR 1.1 checkout: the folder holding references/")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=1024, help="--input_size of the training run")
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    evaluate = doctr_evaluate(args.checkout)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        validation_set(root / "val", args.images)
        precompute(root, args.size)
        torch.manual_seed(0)
        model = db_resnet50(pretrained=False).eval()
        ways = {"docTR's build_target": run(model, evaluate, root, args.size, args.batch)}
        install(model)
        model.build_target([{"words": np.array([[0.1, 0.1, 0.6, 0.5]], np.float32)}], (1, 32, 32))  # kernels compiled
        ways["install(model)"] = run(model, evaluate, root, args.size, args.batch)
        install(model, root / "val.zarr")  # docs/stacks.md's line (there "val.zarr", here its path)
        ways['install(model, "val.zarr")'] = run(model, evaluate, root, args.size, args.batch)
        stored = dict(model.stored_pages)
    (theirs, their_timing) = ways["docTR's build_target"]
    print(f"\ndocTR 1.1 evaluate(), db_resnet50 (random weights, seed 0), {args.images} receipts at {args.size}:")
    print(f"{'build_target':28} {'val loss':>20} {'recall':>7} {'precision':>9} {'mean IoU':>8} {'ms/page':>8}  "
          "targets")  # fmt: skip
    equal = True
    for name, ((loss, recall, precision, iou), timing) in ways.items():
        alike = same(their_timing.targets, timing.targets)
        equal &= alike and loss == theirs[0] and (recall, precision, iou) == tuple(theirs[1:])
        print(f"{name:28} {loss!r:>20} {_metric(recall):>7} {_metric(precision):>9} {_metric(iou):>8} "
              f"{timing.seconds / timing.pages * 1e3:8.1f}  {'equal' if alike else 'DIFFER'}")  # fmt: skip
    print(f"store pages: {stored.get('hit', 0)} hits, {stored.get('miss', 0)} misses")
    return 0 if equal and stored.get("miss", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
