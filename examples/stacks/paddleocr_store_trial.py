"""docs/stacks.md's store for PaddleOCR, tried as a PaddleOCR user would: a ``det_mv3_db.yml``
whose random ops (``IaaAugment``, ``EastRandomCropData``) are replaced by ``Resize: {size: [640,
640]}``, the store made from it by the documented command, then a training config with
``StoredTargets: {store: train.zarr}`` in place of ``MakeBorderMap`` and ``MakeShrinkMap`` and the
documented line appended to a copy of a PaddleOCR code tree's ``ppocr/data/imaug/__init__.py``.
PaddleOCR's own ``create_operators`` builds each config's ``Train.dataset.transforms`` (its
``Global`` passed to every op, as its ``SimpleDataSet`` does) and its ``transform`` runs them on
photographed receipts read as ``SimpleDataSet`` reads them: in the untouched tree with PaddleOCR's
target ops, in the copy with the store. Prints whether every array is equal (after the target ops
and at the end of the pipeline), the store's hits and misses, and the target ops' time per
image: PaddleOCR's, ours (``ocr_targets.stacks.paddle``) and the store's. Needs paddlepaddle and
ocr-targets with its stacks extra::

    python examples/stacks/paddleocr_store_trial.py PADDLEOCR_TREE [--images 12]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml
from paddleocr_trial import TRANSFORMS, pipeline, receipts

LINE = "from ocr_targets.stacks.paddle_stored import StoredTargets  # ppocr/data/imaug/__init__.py\n"
TARGETS = slice(3, 5)  # the target ops: after DecodeImage, DetLabelEncode and Resize
# det_mv3_db.yml's Global (PaddleOCR passes it to every op) and Train.dataset, the random ops
# replaced by Resize as docs/stacks.md says
GLOBAL = {"use_gpu": False, "epoch_num": 1200, "save_model_dir": "./output/db_mv3/", "checkpoints": None,
          "use_visualdl": False, "infer_img": "doc/imgs_en/img_10.jpg"}  # fmt: skip
STORE_TRANSFORMS = [*TRANSFORMS[:2], {"Resize": {"size": [640, 640]}}, *TRANSFORMS[4:]]


def config(transforms: list) -> dict:
    dataset = {"name": "SimpleDataSet", "data_dir": "./train_data/", "label_file_list": ["./train.txt"],
               "ratio_list": [1.0], "transforms": transforms}  # fmt: skip
    return {"Global": GLOBAL, "Train": {"dataset": dataset}}


def ocr_targets(root: Path, *arguments: str) -> None:
    """The installed ``ocr-targets`` command, run in ``root``."""
    print("$ ocr-targets", " ".join(arguments))
    subprocess.run([str(Path(sys.executable).with_name("ocr-targets")), *arguments], cwd=root, check=True)


def compare(theirs: list, stored: list, ours: list, transform, items: list[dict]) -> tuple[bool, bool, list[float]]:
    """Each receipt through both pipelines, the target ops timed (and ours on the same input).
    Returns whether every array after the target ops was equal, whether every output was, and
    each target step's seconds (PaddleOCR's, ours, the store's)."""
    equal_after, equal_out, seconds = True, True, [0.0, 0.0, 0.0]
    for item in items:
        with open(item["img_path"], "rb") as file:
            data = {**item, "image": file.read()}
        before = transform(copy.deepcopy(data), theirs[: TARGETS.start])
        results = []
        for k, ops in enumerate((theirs[TARGETS], ours, stored[TARGETS.start : TARGETS.start + 1])):
            sample = copy.deepcopy(before)
            start = time.perf_counter()
            sample = transform(sample, ops)
            seconds[k] += time.perf_counter() - start
            results.append(sample)
        their, _, mine = results
        equal_after &= their.keys() == mine.keys() and all(_same(their[key], mine[key]) for key in their)
        outputs = transform(their, theirs[TARGETS.stop :]), transform(mine, stored[TARGETS.start + 1 :])
        equal_out &= all(_same(x, y) for x, y in zip(*outputs, strict=True))
    return equal_after, equal_out, seconds


def _same(x: object, y: object) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.dtype == y.dtype and np.array_equal(x, y)
    if isinstance(x, list | tuple) and isinstance(y, list | tuple) and len(x) == len(y):
        return all(_same(a, b) for a, b in zip(x, y, strict=True))
    return type(x) is type(y) and x == y


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", type=Path, help="a PaddleOCR code tree: the folder holding ppocr/")
    parser.add_argument("--images", type=int, default=12)
    args = parser.parse_args()
    args.tree = args.tree.resolve()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        root = Path(scratch)
        images, labels = receipts(root, args.images)
        images.rename(root / "train_data")
        labels.rename(root / "train.txt")
        made = config(STORE_TRANSFORMS)
        (root / "det_mv3_db.yml").write_text(yaml.safe_dump(made, sort_keys=False))
        ocr_targets(root, "precompute", "--paddle-config", "det_mv3_db.yml", "--images", "train_data/",
                    "--annotations", "train.txt", "--out", "train.zarr", "--quiet")  # fmt: skip
        ocr_targets(root, "verify", "train.zarr", "--quiet")
        training = copy.deepcopy(made)
        training["Train"]["dataset"]["transforms"][TARGETS] = [{"StoredTargets": {"store": "train.zarr"}}]
        (root / "det_mv3_db_stored.yml").write_text(yaml.safe_dump(training, sort_keys=False))

        patched = root / "tree"
        shutil.copytree(args.tree / "ppocr", patched / "ppocr")
        init = patched / "ppocr" / "data" / "imaug" / "__init__.py"
        init.write_text(init.read_text() + LINE)
        their_config = yaml.safe_load((root / "det_mv3_db.yml").read_text())
        theirs, transform = pipeline(args.tree, their_config["Train"]["dataset"]["transforms"], their_config["Global"])
        stored_config = yaml.safe_load((root / "det_mv3_db_stored.yml").read_text())
        stored, _ = pipeline(patched, stored_config["Train"]["dataset"]["transforms"], stored_config["Global"])
        op = stored[TARGETS.start]
        print("op in the patched tree:", type(op).__module__ + "." + type(op).__name__)
        from ocr_targets.stacks.paddle import MakeBorderMap, MakeShrinkMap

        ours = [MakeBorderMap(**TRANSFORMS[4]["MakeBorderMap"]), MakeShrinkMap(**TRANSFORMS[5]["MakeShrinkMap"])]
        lines = [line.split("\t", 1) for line in (root / "train.txt").read_text().splitlines()]
        items = [{"img_path": str(root / "train_data" / name), "label": label} for name, label in lines]
        compare(theirs, stored, ours, transform, items[:1])  # our kernels compiled, the store's index read
        op.hits = op.misses = 0
        equal_after, equal_out, seconds = compare(theirs, stored, ours, transform, items)
        hits, misses = op.hits, op.misses
        edited = {**items[0], "label": json.dumps(json.loads(items[0]["label"])[:-1])}  # a word dropped since
        edited_after, edited_out, _ = compare(theirs, stored, ours, transform, [edited])
    count = len(items)
    print(f"\n{count} receipts through det_mv3_db's training transforms, Resize for the random ops:")
    print(f"every array after the target ops equal: {equal_after}; every output equal: {equal_out}")
    print(f"StoredTargets: {hits} hits, {misses} misses; a label edited after precompute: "
          f"{op.misses - misses} miss, computed equal: {edited_after and edited_out}")  # fmt: skip
    print(f"{'target ops':42} {'ms/image':>8}")
    for name, total in zip(("PaddleOCR's MakeBorderMap + MakeShrinkMap", "ours (ocr_targets.stacks.paddle)",
                            "StoredTargets (the store)"), seconds, strict=True):  # fmt: skip
        print(f"{name:42} {total / count * 1e3:8.1f}")
    equal = equal_after and equal_out and edited_after and edited_out
    return 0 if equal and (hits, misses, op.misses - misses) == (count, 0, 1) else 1


if __name__ == "__main__":
    sys.exit(main())
