"""docs/stacks.md's one line, tried as a PaddleOCR user would: in a copy of a PaddleOCR code tree
(a checkout, or the installed ``paddleocr`` package: the folder that holds ``ppocr/``), the line
appended to ``ppocr/data/imaug/__init__.py``; PaddleOCR's own ``create_operators`` builds its DB
training transforms (those of its ``configs/det/det_mv3_db.yml``, random augmentation included)
in that tree and in the untouched one, and its ``transform`` runs them on photographed
receipts: each receipt augmented once, the rest of the pipeline run both ways on it. Prints
whether every output array is equal and the time of the two target ops each way. Needs
paddlepaddle (PaddleOCR's ``ppocr.data`` imports it) and ocr-targets::

    python examples/stacks/paddleocr_trial.py PADDLEOCR_TREE [--images 12]
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

LINE = "from ocr_targets.stacks.paddle import MakeBorderMap, MakeShrinkMap  # ppocr/data/imaug/__init__.py\n"
# PaddleOCR's configs/det/det_mv3_db.yml, Train.dataset.transforms
TRANSFORMS = [
    {"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
    {"DetLabelEncode": None},
    {"IaaAugment": {"augmenter_args": [
        {"type": "Fliplr", "args": {"p": 0.5}},
        {"type": "Affine", "args": {"rotate": [-10, 10]}},
        {"type": "Resize", "args": {"size": [0.5, 3]}},
    ]}},
    {"EastRandomCropData": {"size": [640, 640], "max_tries": 50, "keep_ratio": True}},
    {"MakeBorderMap": {"shrink_ratio": 0.4, "thresh_min": 0.3, "thresh_max": 0.7}},
    {"MakeShrinkMap": {"shrink_ratio": 0.4, "min_text_size": 8}},
    {"NormalizeImage": {"scale": "1./255.", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                        "order": "hwc"}},
    {"ToCHWImage": None},
    {"KeepKeys": {"keep_keys": ["image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask"]}},
]  # fmt: skip


def pipeline(tree: Path, transforms: list = TRANSFORMS, shared: dict | None = None):
    """PaddleOCR's ``create_operators`` (of ``transforms``, ``shared`` passed to every op as its
    ``SimpleDataSet`` passes a config's ``Global``) and ``transform``, imported from ``tree``."""
    for name in [name for name in sys.modules if name == "ppocr" or name.startswith("ppocr.")]:
        del sys.modules[name]
    sys.path.insert(0, str(tree))
    try:
        imaug = importlib.import_module("ppocr.data.imaug")
    finally:
        sys.path.remove(str(tree))
    return imaug.create_operators(json.loads(json.dumps(transforms)), shared), imaug.transform


def receipts(folder: Path, count: int) -> tuple[Path, Path]:
    """Photographed receipts (benchmarks/synthetic.py) in ``folder/images`` and their PaddleOCR
    label file ``folder/labels.txt`` (``name<TAB>[{"transcription", "points"}]``, the images'
    names relative to their folder): (images folder, label file)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.synthetic import write_photos

    images, annotations = write_photos(folder, count, seed=5, shape=(1280, 960))
    lines = []
    for name, entry in json.loads(annotations.read_text())["images"].items():
        label = [{"transcription": "w", "points": word["points"]} for word in entry["words"].values()]
        lines.append(f"{name}\t{json.dumps(label)}\n")
    annotations.unlink()
    labels = folder / "labels.txt"
    labels.write_text("".join(lines))
    return images, labels


def samples(count: int, folder: Path | None = None) -> list[dict]:
    """:func:`receipts` as PaddleOCR's ``SimpleDataSet`` reads them: each line's image path and label."""
    images, labels = receipts(folder or Path(tempfile.mkdtemp()), count)
    lines = [line.split("\t", 1) for line in labels.read_text().splitlines()]
    return [{"img_path": str(images / name), "label": label} for name, label in lines]


def compare(theirs: list, ours: list, transform, items: list[dict]) -> tuple[bool, int, float, float]:
    """Each receipt decoded, labelled, augmented and cropped by PaddleOCR's own first ops, once;
    then the rest of the pipeline run on a copy with its target ops and on a copy with ours
    (its random ops draw from generators seeded where they are made, so two whole runs differ).
    Returns whether every output is equal, the receipts compared, and each target pair's time."""
    equal, count, their_seconds, our_seconds = True, 0, 0.0, 0.0
    transform(copy.deepcopy(_augmented(theirs, transform, items[0])), ours[4:])  # compile our kernels first
    for item in items:
        data = _augmented(theirs, transform, item)
        if data is None:
            continue
        timings = []
        outputs = []
        for ops in (theirs, ours):
            start = time.perf_counter()
            made = transform(copy.deepcopy(data), ops[4:6])
            timings.append(time.perf_counter() - start)
            outputs.append(transform(made, ops[6:]))
        count += 1
        their_seconds, our_seconds = their_seconds + timings[0], our_seconds + timings[1]
        equal &= all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(outputs[0], outputs[1], strict=True))
    return equal, count, their_seconds, our_seconds


def _augmented(ops: list, transform, item: dict) -> dict | None:
    with open(item["img_path"], "rb") as file:
        return transform({**item, "image": file.read()}, ops[:4])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", type=Path, help="a PaddleOCR code tree: the folder holding ppocr/")
    parser.add_argument("--images", type=int, default=12)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    items = samples(args.images)
    with tempfile.TemporaryDirectory() as scratch:
        patched = Path(scratch) / "tree"
        shutil.copytree(args.tree / "ppocr", patched / "ppocr")
        init = patched / "ppocr" / "data" / "imaug" / "__init__.py"
        init.write_text(init.read_text() + LINE)
        (theirs, transform), (ours, _) = pipeline(args.tree), pipeline(patched)
        print("ops in the patched tree:", [type(op).__module__ + "." + type(op).__name__ for op in ours[4:6]])
        equal, count, their_seconds, our_seconds = compare(theirs, ours, transform, items)
    print(f"{count} augmented receipts through PaddleOCR's det_mv3_db training transforms: every output equal: {equal}")
    print(f"MakeBorderMap + MakeShrinkMap: {their_seconds / count * 1e3:.1f} ms per image with PaddleOCR's, "
          f"{our_seconds / count * 1e3:.1f} ms with ours ({their_seconds / our_seconds:.1f}x)")  # fmt: skip
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
