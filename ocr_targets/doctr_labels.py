"""docTR's detection label file, the ``labels.json`` its ``DetectionDataset`` reads
(``doctr/datasets/detection.py``)::

    {"img.jpg": {"img_dimensions": [...], "img_hash": "...", "polygons": [[[x, y], ...], ...]}}

``polygons`` is a list (every word of docTR's one class, ``"words"``) or a mapping of class
names to lists. docTR reads the points as float32 and keeps them so: the words here are float32
too (not rounded, unlike UFO's), so that the docTR stack starts from the same numbers.
"""

from __future__ import annotations

import numpy as np

from .geometry import COORDINATE_LIMIT

CLASS_NAME = "words"  # doctr.file_utils.CLASS_NAME: the class of a list of polygons
SHAPE = '{name: {"polygons": [[[x, y], ...], ...]}} (docTR\'s labels.json)'


class DoctrLabel(dict):
    """One image's entry of a docTR label file: tagged so by the file's reader, because the file's
    shape, not the entry's keys, says which format an entry is in."""


def doctr_labels(document: object) -> dict[str, DoctrLabel] | None:
    """The entries of ``document`` if it has the shape of a docTR label file (an object of objects,
    one at least with ``polygons``), else None."""
    if not isinstance(document, dict) or not document or not all(isinstance(v, dict) for v in document.values()):
        return None
    if not any("polygons" in entry for entry in document.values()):
        return None
    return {name: DoctrLabel(entry) for name, entry in document.items()}


def label_polygons(entry: DoctrLabel) -> list[np.ndarray]:
    """The entry's words as (P, 2) float32 arrays, converted as docTR converts them
    (``np.asarray(polygons, dtype=np.float32)``); ValueError says what is wrong.

    The store holds one class: a mapping with words of another class than docTR's ``"words"``
    is refused rather than drawn into its map."""
    polygons = entry.get("polygons")
    if isinstance(polygons, dict):
        other = sorted(name for name, words in polygons.items() if words and name != CLASS_NAME)
        if other:
            raise ValueError(f'polygons of classes {other}: a store holds docTR\'s one class, "{CLASS_NAME}"')
        polygons = polygons.get(CLASS_NAME) or []
    if not isinstance(polygons, list):
        raise ValueError('no "polygons" list (or {class: list})')
    if not polygons:
        return []
    try:
        block = np.asarray(polygons, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(
            f"polygons are not [[[x, y], ...], ...] numbers, as many points each: {polygons!r:.160}"
        ) from None
    if block.ndim != 3 or block.shape[1] == 0 or block.shape[2] != 2:
        raise ValueError(f"polygons must be [[[x, y], ...], ...], got shape {block.shape}")
    if not np.isfinite(block).all() or not (np.abs(block) < COORDINATE_LIMIT).all():
        raise ValueError("has non-finite coordinates, or coordinates beyond +-2^24 pixels")
    return list(block)
