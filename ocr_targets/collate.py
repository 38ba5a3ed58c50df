"""Collate functions: targets read from a store by index, or computed on the fly.

Both are drop-in for the baseline's DB collate: the same keys, shapes and dtypes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ._torch import torch
from .config import TargetConfig
from .dataset import UFODataset
from .maps import reference_targets
from .reader import TargetStore, open_store
from .store import StoreError, StoreLock


class _Collate:
    """Stacks images and, unless in inference mode, has ``fill`` write each item's maps into the batch.

    The maps are written straight into the batch tensors: no per-item arrays to stack.
    ``prob_maps`` and ``thresh_maps`` are float32 (B, 1, H, W) as in the baseline; the
    DB-style ``prob_masks`` and ``thresh_masks`` are uint8 (B, H, W).
    """

    def __init__(self, inference_mode: bool = False) -> None:
        self.inference_mode = inference_mode

    def fill(self, item: dict, out: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def __call__(self, batch: Sequence[dict]) -> OrderedDict:
        collated = OrderedDict(
            images=torch.stack([item["image"] for item in batch]),
            image_filename=[item["image_filename"] for item in batch],
            inverse_matrix=[item["inverse_matrix"] for item in batch],
        )
        if not self.inference_mode:
            collated["polygons"] = [item["polygons"] for item in batch]
            collated.update(self.targets(batch))
        return collated

    def targets(self, batch: Sequence[dict]) -> dict[str, torch.Tensor]:
        """The batch's maps and masks, each item's written in place by ``fill``."""
        _, height, width = batch[0]["image"].shape
        count = len(batch)
        maps = {
            "prob_maps": torch.empty((count, 1, height, width), dtype=torch.float32),
            "thresh_maps": torch.empty((count, 1, height, width), dtype=torch.float32),
            "prob_masks": torch.empty((count, height, width), dtype=torch.uint8),
            "thresh_masks": torch.empty((count, height, width), dtype=torch.uint8),
        }
        for index, item in enumerate(batch):
            self.fill(item, {key[:-1]: tensor[index].reshape(height, width).numpy() for key, tensor in maps.items()})
        return maps


class OnTheFlyCollate(_Collate):
    """The baseline's way: compute every item's targets, every batch (``compute`` picks the path)."""

    def __init__(
        self,
        config: TargetConfig = TargetConfig(),
        inference_mode: bool = False,
        compute: Callable = reference_targets,
    ) -> None:
        super().__init__(inference_mode)
        self.config = config
        self.compute = compute

    def fill(self, item: dict, out: dict[str, np.ndarray]) -> None:
        _, height, width = item["image"].shape
        targets = self.compute((height, width), item["polygons"], self.config, item.get("ignore"))
        for name, array in out.items():
            array[...] = getattr(targets, name)


class StoreCollate(_Collate):
    """Reads each item's targets from a store by the item's ``index``: no geometry, no hashing per batch.

    Made for one dataset: the store is checked against it once, here (file names and
    order, parameters, geometry, every image's content hash, every entry done), and
    held with a shared lock so no precompute job rewrites it while it is read.
    """

    def __init__(
        self,
        dataset: UFODataset,
        store: TargetStore | str | Path,
        config: TargetConfig | None = None,
        inference_mode: bool = False,
    ) -> None:
        super().__init__(inference_mode)
        self.store = store if isinstance(store, TargetStore) else open_store(store)
        self._lock = StoreLock(self.store.path, shared=True)
        try:
            check_store(dataset, self.store, config)
        except BaseException:
            self._lock.release()
            raise

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_lock": None}  # the lock stays with the process that checked the store

    def fill(self, item: dict, out: dict[str, np.ndarray]) -> None:
        if "index" not in item:
            raise KeyError("StoreCollate needs each item's dataset 'index' (UFODataset items carry it)")
        self.store.read_maps_into(item["index"], out, checked=True)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()


def check_store(dataset: UFODataset, store: TargetStore, config: TargetConfig | None = None) -> None:
    """Raise StoreError, saying what differs and how to fix it, unless ``store`` serves ``dataset``."""
    fix = (
        f"bring it up to date with: ocr-targets precompute --images {dataset.images} "
        f"--annotations {dataset.annotations_path} --out {store.path}"
    )
    if config is not None and config != store.config:
        raise StoreError(f"{store.path}: made with {store.config}, the collate asks for {config}; {fix} --overwrite")
    if store.pad != dataset.pad:
        raise StoreError(
            f"{store.path}: made with --pad {store.pad}, the dataset pads {dataset.pad}; "
            f"{fix} --pad {dataset.pad} --overwrite"
        )
    if store.size != dataset.size:
        raise StoreError(
            f"{store.path}: made at size {store.size}, the dataset uses {dataset.size}; "
            f"{fix} --size {dataset.size} --overwrite"
        )
    if store.filenames != dataset.filenames:
        missing = sorted(set(dataset.filenames) - set(store.filenames))
        extra = sorted(set(store.filenames) - set(dataset.filenames))
        detail = (
            f"{len(missing)} images not in the store (e.g. {missing[:3]}), "
            f"{len(extra)} not in the dataset (e.g. {extra[:3]})"
        )
        if not missing and not extra:
            detail = "the same images in another order"
        raise StoreError(f"{store.path}: does not match {dataset.annotations_path}: {detail}; {fix}")
    done = store.done()
    stored = store.content_hashes()
    current = dataset.content_hashes(store.config)
    stale = [name for name, a, b, d in zip(dataset.filenames, stored, current, done, strict=True) if a != b or not d]
    if stale:
        shown = ", ".join(stale[:5]) + (", ..." if len(stale) > 5 else "")
        raise StoreError(
            f"{store.path}: {len(stale)} of {len(store)} entries are missing or stale "
            f"(image or words changed since precompute: {shown}); {fix}"
        )
