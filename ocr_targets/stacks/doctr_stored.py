"""A doctr store served at loss time. docTR's ``build_target`` is a pure function of a page's
class names and relative float32 boxes, the output shape and four model attributes: a page whose
key (those first three, hashed) a store holds gets the stored maps, equal to what it would
compute; any other page is computed. The store is read with numpy and zarr only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..location import Location
from ..store import TargetStore, open_store
from .doctr_pipeline import page as stored_page
from .doctr_pipeline import parameters

READER = "ocr_targets.stacks.doctr.install"
_BATCH = 256  # entries whose words are read in one call when the table is built


def page_key(page: dict[str, np.ndarray], output_shape: tuple[int, ...]) -> bytes:
    """What docTR's ``build_target`` computes one page's maps from, but the model's parameters:
    each class's name and boxes (dtype, shape, bytes) and the output shape, hashed."""
    digest = hashlib.sha256(repr(tuple(int(side) for side in output_shape)).encode())
    for name, boxes in page.items():
        digest.update(repr((name, boxes.dtype.str, boxes.shape)).encode())
        digest.update(np.ascontiguousarray(boxes).tobytes())
    return digest.digest()


class StoredTargets:
    """The entries of a doctr store by :func:`page_key`, built once from their stored words."""

    def __init__(self, store: TargetStore | str | Path | Location, model: object) -> None:
        """Refuses (OtherStack) a store made for another stack, and (ValueError) one whose maps
        would not be ``model``'s: other parameters, or threshold maps not kept as float32."""
        self.store = store if isinstance(store, TargetStore) else open_store(store)
        self.store.require_stack("doctr", READER)
        wanted = parameters(self.store.config)
        found = {name: getattr(model, name) for name in wanted}
        if found != wanted:
            raise ValueError(f"{self.store.path}: made with {wanted}, and the model has {found}; its maps would differ")
        if self.store.settings.thresh_dtype != "float32":
            raise ValueError(
                f"{self.store.path}: keeps its threshold maps as {self.store.settings.thresh_dtype}, not docTR's "
                "float32 values; make it with --thresh-dtype float32"
            )
        shape = (1, self.store.size, self.store.size)
        done = np.flatnonzero(self.store.done()).tolist()
        self.index: dict[bytes, int] = {}
        for start in range(0, len(done), _BATCH):
            chunk = done[start : start + _BATCH]
            for entry, (words, _, _) in zip(chunk, self.store.batch_words(chunk), strict=True):
                self.index.setdefault(page_key(stored_page(words), shape), entry)  # equal keys, equal maps

    def find(self, page: dict[str, np.ndarray], output_shape: tuple[int, ...]) -> int | None:
        """The entry holding ``page``'s maps at ``output_shape``, or None."""
        return self.index.get(page_key(page, output_shape))

    def read(self, entries: list[int], targets: tuple[np.ndarray, ...], pages: list[int]) -> None:
        """The maps of ``entries`` into pages ``pages`` of docTR's four (batch, 1, h, w) targets."""
        seg_target, seg_mask, thresh_target, thresh_mask = targets
        out = [
            {
                "prob_map": seg_target[k, 0],
                "thresh_map": thresh_target[k, 0],
                "prob_mask": np.empty(seg_mask.shape[2:], np.uint8),
                "thresh_mask": np.empty(thresh_mask.shape[2:], np.uint8),
            }
            for k in pages
        ]
        self.store.read_maps_into(entries, out)
        for k, maps in zip(pages, out, strict=True):
            seg_mask[k, 0] = maps["prob_mask"]
            thresh_mask[k, 0] = maps["thresh_mask"]
