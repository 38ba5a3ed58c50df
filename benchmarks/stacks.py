"""The training stacks' targets: ours against each stack's own released code, per image, one core.

PaddleOCR gets what its ``DetLabelEncode`` gives its two ops (absolute float32 polygons on a
640x640 image); docTR gets relative boxes, and relative polygons, of a page at output size
640x640. The words are the photographed receipts' (164 words), brought to 640x640 as the
other sections bring them. Timings are this process's CPU time (on a shared machine, less
disturbed by the others' work than wall time), the best of interleaved passes, after a warm-up.

``bench_stacks`` prints its table and returns summary rows (what, now, goal) for ``row``.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ocr_targets.images import load_sample
from ocr_targets.stacks import doctr, paddle
from ocr_targets.stacks.released import doctr_dbnet, paddle_ops
from ocr_targets.ufo import parse_entry, read_ufo

from .synthetic import write_photos
from .timing import best_interleaved

SIZE = 640
WORDS = 164


def bench_stacks(images: int, passes: int = 5) -> list[tuple[str, str, str]]:
    """Print, per stack, ms per image with its own code and with ours, and the ratio."""
    scenes = _receipts(images)
    words = sum(len(polygons) for polygons in scenes) / len(scenes)
    print(f"== training stacks' targets, one core (ms per image; {images} photographed receipts, {words:.0f} words)")
    print(f"{'stack':<36}{'its own':>10}{'ours':>10}{'ratio':>9}")
    rows = []
    for label, theirs, ours in _contenders(scenes):
        timings = _best_interleaved({"theirs": theirs, "ours": ours}, passes)
        their_ms, our_ms = timings["theirs"] / images * 1e3, timings["ours"] / images * 1e3
        print(f"{label:<36}{their_ms:>10.2f}{our_ms:>10.2f}{their_ms / our_ms:>8.1f}x")
        rows.append(
            (
                f"targets of one receipt, {label}, vs its own code",
                f"{their_ms / our_ms:.1f}x ({our_ms:.1f} ms)",
                ">= 10x",
            )
        )
    return rows


def _receipts(count: int) -> list[np.ndarray]:
    """The photographed receipts' words at 640x640, float32 (N, 4, 2)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder, annotations = write_photos(Path(scratch), count, seed=3, words=WORDS)
        samples = [load_sample(folder, parse_entry(n, e), SIZE, pixels=False) for n, e in read_ufo(annotations).items()]
    return [np.array(sample.polygons, dtype=np.float32).reshape(-1, 4, 2) for sample in samples]


def _contenders(scenes: list[np.ndarray]) -> list[tuple[str, Callable[[], None], Callable[[], None]]]:
    """(label, the stack's own code over all scenes, ours over all scenes), per stack and input."""
    their_border, their_shrink = paddle_ops()
    samples = [
        {"image": np.zeros((SIZE, SIZE, 3), np.uint8), "polys": polys, "ignore_tags": np.zeros(len(polys), bool)}
        for polys in scenes
    ]

    def paddle_run(border: Callable, shrink: Callable) -> Callable[[], None]:
        def run() -> None:
            # Fresh polygons and tags each time (the shrink op edits them in place); each image's
            # targets dropped before the next, as a loader's collate consumes them.
            for s in samples:
                shrink(border(dict(s, polys=s["polys"].copy(), ignore_tags=s["ignore_tags"].copy())))

        return run

    relative = [np.clip(polys / SIZE, 0, 1).astype(np.float32) for polys in scenes]
    boxes = [np.concatenate((words.min(axis=1), words.max(axis=1)), axis=1) for words in relative]
    theirs, ours = doctr_dbnet()(), doctr_dbnet()()
    doctr.install(ours)

    def doctr_run(model: object, pages: list[np.ndarray]) -> Callable[[], None]:
        def run() -> None:
            for words in pages:
                model.build_target([{"words": words}], (1, SIZE, SIZE))

        return run

    return [
        (
            "PaddleOCR 2.10, its two ops",
            paddle_run(their_border(), their_shrink()),
            paddle_run(paddle.MakeBorderMap(), paddle.MakeShrinkMap()),
        ),
        ("docTR 1.1 build_target, boxes", doctr_run(theirs, boxes), doctr_run(ours, boxes)),
        ("docTR 1.1 build_target, polygons", doctr_run(theirs, relative), doctr_run(ours, relative)),
    ]


def _best_interleaved(runs: dict[str, Callable[[], object]], passes: int) -> dict[str, float]:
    """The fastest of ``passes`` runs of each, taken in turn after one untimed run of each (which
    compiles or loads the kernels), in seconds. The stacks' own code runs as in their processes:
    numpy's warnings off, as PaddleOCR's module sets them."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return best_interleaved(runs, passes, clock=time.process_time)
