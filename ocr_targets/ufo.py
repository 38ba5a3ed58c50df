"""Annotation files: the competition's UFO format (and docTR's and PaddleOCR's label files, told
apart by their shape: :mod:`ocr_targets.doctr_labels`, :mod:`ocr_targets.paddle_labels`),
loading and per-image word polygons."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .doctr_labels import SHAPE as DOCTR_SHAPE
from .doctr_labels import DoctrLabel, doctr_labels, label_polygons
from .errors import WORDS_UNUSABLE, AnnotationError
from .geometry import COORDINATE_LIMIT
from .location import Location
from .paddle_labels import SHAPE as PADDLE_SHAPE
from .paddle_labels import LabelLine, is_label_file, parse_line, read_label_lines


@dataclass(frozen=True)
class ImageAnnotation:
    """One image's words, as the baseline dataset loads them.

    ``polygons`` are (N, 2) int32, rounded from a UFO file's points (float32 as a docTR or
    PaddleOCR label file's are read: :mod:`ocr_targets.doctr_labels`,
    :mod:`ocr_targets.paddle_labels`); ``ignore`` marks words flagged illegible or transcribed
    ``###`` (``*`` or ``###`` in a PaddleOCR label file; docTR's labels have no such flag).
    """

    name: str
    polygons: list[np.ndarray]
    ignore: list[bool]

    def __reduce__(self) -> tuple:
        """Pickled as one array of points: the job sends its workers blocks of these, and a
        hundred small arrays an image were most of the time a worker took to receive a task."""
        lengths = [len(polygon) for polygon in self.polygons]
        points = np.concatenate(self.polygons) if self.polygons else np.zeros((0, 2), np.int32)
        return _unpickle_annotation, (self.name, points, lengths, self.ignore)


def _unpickle_annotation(name: str, points: np.ndarray, lengths: list[int], ignore: list[bool]) -> ImageAnnotation:
    ends = np.cumsum(lengths).tolist()
    polygons = [points[end - length : end] for length, end in zip(lengths, ends, strict=True)]
    return ImageAnnotation(name, polygons, ignore)


UFO_WORDS = '{id: {"points": [[x, y], ...]}}'  # an image's "words"
UFO_SHAPE = '{"images": {name: {"words": ' + UFO_WORDS + "}}}"


def read_ufo(path: str | Path | Location) -> dict[str, dict]:
    """The file's images (name -> raw entry), in file order; clear errors on a bad file."""
    return read_ufo_file(path)[0]


def read_annotations(path: str | Path | Location) -> list[ImageAnnotation]:
    """Every image's words, in file order: the one parse of an annotation file that the datasets
    and the staleness check share (clear errors on a bad file or entry)."""
    return [parse_entry(name, entry) for name, entry in read_ufo(path).items()]


def read_ufo_file(path: str | Path | Location) -> tuple[dict[str, dict], str]:
    """The file's images (name -> raw entry: a UFO file's ``images`` mapping, a docTR label file's
    entries as :class:`DoctrLabel`, or a PaddleOCR label file's lines as :class:`LabelLine`), and
    the SHA-256 of its bytes (what the store records, so that a check finds an unchanged file
    without parsing it)."""
    path = Location.of(path)
    try:
        data = path.read_bytes()
        if is_label_file(data):  # PaddleOCR's label file, one image a line
            return read_label_lines(path, data.decode("utf-8")), hashlib.sha256(data).hexdigest()
        with _collector_paused():
            document = json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise AnnotationError(path, "annotation file not found") from None
    except IsADirectoryError:
        raise AnnotationError(path, "is a directory, not an annotation file") from None
    except OSError as error:
        raise AnnotationError(path, "cannot read the annotation file", str(error.strerror)) from None
    except UnicodeDecodeError as error:
        raise AnnotationError(path, "not UTF-8 text", str(error)) from None
    except json.JSONDecodeError as error:
        raise AnnotationError(path, f"not valid JSON: {error}") from None
    images = document.get("images") if isinstance(document, dict) else None
    if not isinstance(images, dict):
        images = doctr_labels(document)
    if images is None:
        raise AnnotationError(path, f"expected a UFO object {UFO_SHAPE} or docTR labels {DOCTR_SHAPE}")
    return images, hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused: a word is seven new lists and dicts, and the
    collections their number sets off walk every object the process holds. In the job's
    client, 22,400 words parsed in 150 ms with it running, 30 ms without."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def expected_shape(entry: object) -> str:
    """The shape the format of ``entry`` (as :func:`read_ufo_file` gives it) expects: what an
    error tells a file none of whose entries can be read."""
    if isinstance(entry, LabelLine):
        return PADDLE_SHAPE
    if isinstance(entry, DoctrLabel):
        return DOCTR_SHAPE
    return UFO_SHAPE


def parse_entry(name: str, entry: object) -> ImageAnnotation:
    """Validate one image's entry and round its points to int32 as the baseline dataset does (a
    docTR label's or a PaddleOCR label line's points are kept as those stacks read them, float32)."""
    if isinstance(entry, LabelLine):
        return ImageAnnotation(name, *parse_line(name, entry))
    if isinstance(entry, DoctrLabel):
        try:
            polygons = label_polygons(entry)
        except ValueError as problem:
            raise AnnotationError(name, str(problem)) from None
        return ImageAnnotation(name, polygons, [False] * len(polygons))
    if not isinstance(entry, dict):
        raise AnnotationError(name, "entry is not an object")
    words = entry.get("words") or {}
    if not isinstance(words, dict):
        raise AnnotationError(name, '"words" is not an object', f"a {type(words).__name__}; expected {UFO_WORDS}")
    kept, problems = [], []
    for word_id, word in words.items():
        points = word.get("points") if isinstance(word, dict) else None
        if not isinstance(points, list):
            problems.append(f'word {word_id} has no "points" list')
        elif len(points):  # the baseline dataset drops empty words
            kept.append((word_id, word, points))
    polygons = _round_points(kept, problems)
    if problems:  # every bad word of the image at once, so one fix of the file is enough
        more = f"; and {len(problems) - 5} more bad words" if len(problems) > 5 else ""
        raise AnnotationError(name, WORDS_UNUSABLE, "; ".join(problems[:5]) + more)
    ignore = [bool(word.get("illegibility", False)) or word.get("transcription") == "###" for _, word, _ in kept]
    return ImageAnnotation(name, polygons, ignore)


def _round_points(words: list[tuple[str, dict, list]], problems: list[str]) -> list[np.ndarray]:
    """Every word's points as (N, 2) int32, rounded; words of one shape are checked in one go.
    What is wrong with a word is added to ``problems``."""
    try:
        block = np.asarray([points for _, _, points in words])
        if _numeric(block) and block.ndim == 3 and block.shape[2] == 2 and (np.abs(block) < COORDINATE_LIMIT).all():
            return list(np.round(block.astype(np.float64)).astype(np.int32))
    except (TypeError, ValueError, OverflowError):
        pass  # ragged or malformed: find the culprit word by word
    rounded = []
    for word_id, _, points in words:
        try:
            rounded.append(_round_word(points))
        except ValueError as problem:
            problems.append(f"word {word_id} {problem}")
    return rounded


def _numeric(array: np.ndarray) -> bool:
    """JSON numbers only: no strings, nulls, objects or integers too large for int64."""
    return array.dtype.kind in "iuf"


def _round_word(points: list) -> np.ndarray:
    try:
        array = np.asarray(points)
    except (TypeError, ValueError, OverflowError):
        array = None  # ragged
    if array is None or not _numeric(array):
        raise ValueError(f"points are not [[x, y], ...] numbers: {points!r:.200}")
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"points must be [[x, y], ...], got shape {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"has non-finite coordinates {points}")
    if np.abs(array).max() >= COORDINATE_LIMIT:
        raise ValueError("has coordinates beyond +-2^24 pixels")
    return np.round(array).astype(np.int32)
