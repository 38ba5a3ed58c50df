"""PaddleOCR's detection label files: one image a line, ``path<TAB>[{"transcription": ..., "points":
[[x, y], ...]}, ...]``, as its ``SimpleDataSet`` splits them and its ``DetLabelEncode`` reads them.

The points are kept as ``DetLabelEncode`` makes them, float32 (its ``np.array(boxes,
dtype=np.float32)``), word by word: the padding of every word to the image's most points is the
PaddleOCR stack's transform, not the file's. A word transcribed ``*`` or ``###`` is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .errors import WORDS_UNUSABLE, AnnotationError
from .geometry import COORDINATE_LIMIT

IGNORED = ("*", "###")  # DetLabelEncode's ignore tags
SHAPE = 'image_path<TAB>[{"transcription": "...", "points": [[x, y], ...]}, ...]'


@dataclass(frozen=True)
class LabelLine:
    """One image's line of a label file, as read: parsed by :func:`parse_line` (through
    ``ufo.parse_entry``), so that one bad line fails its image only, as a bad UFO entry does."""

    number: int  # 1-based
    label: str  # the JSON text after the tab


def is_label_file(data: bytes) -> bool:
    """Whether a file's bytes are a PaddleOCR label file rather than JSON: its first line holds a
    tab and does not open a JSON object."""
    first = data.lstrip().split(b"\n", 1)[0]
    return not first.startswith(b"{") and b"\t" in first


def read_label_lines(path: object, text: str) -> dict[str, LabelLine]:
    """Each image's line, by image path, in file order; blank lines are skipped. ``path`` names
    the file in errors."""
    lines: dict[str, LabelLine] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        name, tab, label = line.rstrip("\r").partition("\t")
        if not tab:
            raise AnnotationError(path, f"line {number} has no tab: expected {SHAPE}")
        if name.startswith("["):  # SimpleDataSet reads a list of paths there and picks one at random
            raise AnnotationError(path, f"line {number} names a list of images, of which PaddleOCR picks one at random")
        if name in lines:
            raise AnnotationError(path, f"line {number}: {name} is also on line {lines[name].number}")
        lines[name] = LabelLine(number, label.split("\t", 1)[0])
    return lines


def parse_line(name: str, line: LabelLine) -> tuple[list[np.ndarray], list[bool]]:
    """The words of one line: (K, 2) float32 points each, and whether each is ignored.
    Errors (AnnotationError) name the line and the image."""
    where = f"line {line.number} ({name})"
    try:
        words = json.loads(line.label)
    except json.JSONDecodeError as error:
        raise AnnotationError(where, "the label is not valid JSON", str(error)) from None
    if not isinstance(words, list) or not all(isinstance(word, dict) for word in words):
        raise AnnotationError(where, f"the label is not a list of words: expected {SHAPE}")
    polygons, ignore = [], []
    for k, word in enumerate(words):
        polygons.append(_points(where, k, word.get("points")))
        if "transcription" not in word:
            raise AnnotationError(where, WORDS_UNUSABLE, f'word {k} has no "transcription"')
        ignore.append(word["transcription"] in IGNORED)
    return polygons, ignore


def _points(where: str, k: int, points: object) -> np.ndarray:
    try:
        array = np.array(points, dtype=np.float32)
    except (TypeError, ValueError):
        detail = f"word {k}: points are not [[x, y], ...] numbers: {points!r:.200}"
        raise AnnotationError(where, WORDS_UNUSABLE, detail) from None
    if array.ndim != 2 or array.shape[1] != 2 or not len(array):
        raise AnnotationError(where, WORDS_UNUSABLE, f"word {k}: points must be [[x, y], ...], got shape {array.shape}")
    if not (np.abs(array) < COORDINATE_LIMIT).all():
        raise AnnotationError(where, WORDS_UNUSABLE, f"word {k}: coordinates not finite or beyond +-2^24 pixels")
    return array
