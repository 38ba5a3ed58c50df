"""A PaddleOCR op that serves a store's targets: :class:`StoredTargets`, named in a config in place
of ``MakeBorderMap`` and ``MakeShrinkMap`` (with its import in ``ppocr/data/imaug/__init__.py``, as
docs/stacks.md shows).

At that point of PaddleOCR's pipeline nothing names the image's entry for certain (a path can be
relabelled, an image resized), so the sample is found by what its targets are made of: the image's
shape and the float32 ``polys`` and ``ignore_tags`` as ``Resize`` leaves them, hashed. A sample the
store does not hold (another Resize, a changed label) is computed by our two ops, as it would have
been without the store.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..store import TargetStore, open_store
from .paddle import MakeBorderMap, MakeShrinkMap, shrink_map_in_place
from .paddle_pipeline import PaddlePipeline, label_polys

STACK = "paddleocr"


class StoredTargets:
    """``MakeBorderMap`` then ``MakeShrinkMap``, read from the store at ``store`` where it holds the
    sample: the same four keys, and the same in-place edits of ``polys`` and ``ignore_tags`` (made
    by the shrink op's own steps, its maps dropped). The store's settings are the ops' parameters;
    PaddleOCR's ``Global`` keys, passed to every op, are taken and left.

    ``hits`` and ``misses`` count the samples served and computed, in this process (each of
    PaddleOCR's loader workers has its own copy of the op).
    """

    def __init__(self, store: str, **kwargs) -> None:
        self.store: TargetStore = open_store(store)
        self.store.require_stack(STACK, "StoredTargets")  # OtherStack: another stack's targets
        config, pipeline = self.store.config, PaddlePipeline(**self.store.settings.stack_options)
        self.border = MakeBorderMap(config.shrink_ratio, config.thresh_min, config.thresh_max)
        self.shrink = MakeShrinkMap(pipeline.min_text_size, config.shrink_ratio)
        self.entries = stored_keys(self.store)
        self.hits = self.misses = 0

    def __call__(self, data: dict) -> dict:
        shape = data["image"].shape[:2]
        index = self.entries.get(sample_key(shape, data["polys"], data["ignore_tags"]))
        if index is None:
            self.misses += 1
            return self.shrink(self.border(data))
        self.hits += 1
        maps = self.store.read_maps(index)
        shrink_map_in_place(
            shape, data["polys"], data["ignore_tags"], self.shrink.shrink_ratio, self.shrink.min_text_size
        )
        data["threshold_map"] = maps["thresh_map"]
        data["threshold_mask"] = maps["thresh_mask"].astype(np.float32)
        data["shrink_map"] = maps["prob_map"]
        data["shrink_mask"] = maps["prob_mask"].astype(np.float32)
        return data


def sample_key(shape: tuple[int, int], polys: object, ignore_tags: object) -> bytes | None:
    """What a sample's targets are made of, hashed: the image's (height, width), the ``polys``
    array's dtype, shape and bytes, the ignore tags. None for polys that are no array (PaddleOCR's
    ops take lists after some crops): never stored."""
    if not isinstance(polys, np.ndarray):
        return None
    digest = hashlib.sha256(f"{shape[0]}x{shape[1]} {polys.dtype.str} {polys.shape}".encode())
    digest.update(np.ascontiguousarray(polys).tobytes())
    digest.update(np.asarray(ignore_tags, dtype=np.bool_).tobytes())
    return digest.digest()


def stored_keys(store: TargetStore) -> dict[bytes, int]:
    """Each done entry's :func:`sample_key`, as PaddleOCR's pipeline will have it, to its index:
    the store's words are Resize's polys, its ignore flags DetLabelEncode's."""
    done = np.flatnonzero(store.done()).tolist()
    keys = {}
    for start in range(0, len(done), store.block):
        batch = done[start : start + store.block]
        for index, (words, ignore, _) in zip(batch, store.batch_words(batch), strict=True):
            keys[sample_key((store.size, store.size), label_polys(words), ignore)] = index
    return keys
