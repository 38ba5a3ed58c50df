"""docs/stacks.md's one line, tried as a docTR user would: docTR's own DBNet (``db_resnet50``,
random weights seeded alike) computes its loss on photographed receipts with its own
``build_target``, then again after ``ocr_targets.stacks.doctr.install(model)``. Prints both losses
and the time of the targets per page. Needs python-doctr 1.1 with torch and torchvision::

    python examples/stacks/doctr_trial.py [--images 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from doctr.models import db_resnet50

from ocr_targets.stacks.doctr import install


def pages(count: int) -> tuple[torch.Tensor, list[dict[str, np.ndarray]]]:
    """Receipts resized to 1024x1024 (docTR's input) and their words as relative polygons."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import cv2

    from benchmarks.synthetic import write_photos

    folder, annotations = write_photos(Path(tempfile.mkdtemp()), count, seed=9, shape=(1280, 960))
    images, targets = [], []
    for name, entry in json.loads(annotations.read_text())["images"].items():
        picture = cv2.resize(cv2.imread(str(folder / name))[..., ::-1], (1024, 1024), interpolation=cv2.INTER_LINEAR)
        images.append(torch.from_numpy(picture.copy()).permute(2, 0, 1).float() / 255)
        words = np.array([word["points"] for word in entry["words"].values()], dtype=np.float32)
        words /= np.array([960, 1280], dtype=np.float32)
        targets.append({"words": np.clip(words, 0, 1)})
    return torch.stack(images), targets


def loss_and_time(model, images, targets) -> tuple[float, float, tuple]:
    torch.manual_seed(0)
    start = time.perf_counter()
    maps = model.build_target(targets, (1, 1024, 1024))
    seconds = time.perf_counter() - start
    with torch.no_grad():
        out = model(images, targets)
    return float(out["loss"]), seconds, maps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = db_resnet50(pretrained=False).eval()
    images, targets = pages(args.images)
    theirs, their_seconds, their_maps = loss_and_time(model, images, targets)
    install(model)  # the one line
    model.build_target(targets[:1], (1, 1024, 1024))  # our kernels compiled (or loaded) outside the timing
    ours, our_seconds, our_maps = loss_and_time(model, images, targets)
    same = all(np.array_equal(a, b) for a, b in zip(their_maps, our_maps, strict=True))
    print(f"docTR db_resnet50 on {args.images} receipts: loss {theirs!r} with its build_target, {ours!r} with ours; "
          f"targets equal: {same}")  # fmt: skip
    print(f"build_target: {their_seconds / args.images * 1e3:.1f} ms per page with docTR's, "
          f"{our_seconds / args.images * 1e3:.1f} ms with ours ({their_seconds / our_seconds:.1f}x)")  # fmt: skip
    return 0 if theirs == ours and same else 1


if __name__ == "__main__":
    sys.exit(main())
