"""Collate functions: targets read from a store, or computed on the fly.

Both are drop-in for the baseline's DB collate: the same keys, shapes and dtypes.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ._torch import torch
from .config import TargetConfig
from .dataset import UFODataset
from .hashing import settings_digest
from .images import current_hashes
from .maps import compute_targets, reference_targets
from .reader import TargetStore, open_store
from .store import StoreError, describe, held

logger = logging.getLogger(__name__)
# Entries whose word polygons a StoreCollate keeps per process (a few KB each): a validation
# set of this size reads only its maps from the second epoch on.
_WORDS_KEPT = 8192


class _Collate:
    """Stacks images and, unless in inference mode, has ``fill`` write the items' maps into the batch.

    The maps are written straight into the batch tensors: no per-item arrays to stack.
    ``prob_maps`` and ``thresh_maps`` are float32 (B, 1, H, W) as in the baseline; the
    DB-style ``prob_masks`` and ``thresh_masks`` are uint8 (B, H, W).
    """

    def __init__(self, inference_mode: bool = False) -> None:
        self.inference_mode = inference_mode

    def fill(self, batch: Sequence[dict], out: list[dict[str, np.ndarray]]) -> None:
        """Write each item's maps into its ``out`` (views of the batch tensors)."""
        raise NotImplementedError

    def __call__(self, batch: Sequence[dict]) -> OrderedDict:
        images = [item["image"] for item in batch]
        collated = OrderedDict(
            images=torch.stack(images, out=_batch_tensor((len(batch), *images[0].shape), images[0].dtype)),
            image_filename=[item["image_filename"] for item in batch],
            image_path=[item.get("image_path") for item in batch],
            inverse_matrix=[item["inverse_matrix"] for item in batch],
            raw_size=[item.get("raw_size") for item in batch],
            orientation=[item.get("orientation", 1) for item in batch],
            canonical_size=[item.get("shape") for item in batch],
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
            "prob_maps": _batch_tensor((count, 1, height, width), torch.float32),
            "thresh_maps": _batch_tensor((count, 1, height, width), torch.float32),
            "prob_masks": _batch_tensor((count, height, width), torch.uint8),
            "thresh_masks": _batch_tensor((count, height, width), torch.uint8),
        }
        self.fill(
            batch,
            [
                {key[:-1]: tensor[index].reshape(height, width).numpy() for key, tensor in maps.items()}
                for index in range(count)
            ],
        )
        return maps


def _batch_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An empty batch tensor; in a DataLoader worker, in shared memory, as ``default_collate``
    makes its own: the batch then reaches the main process without being copied."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    template = torch.empty(0, dtype=dtype)
    return template.new(template._typed_storage()._new_shared(math.prod(shape))).view(shape)


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

    def fill(self, batch: Sequence[dict], out: list[dict[str, np.ndarray]]) -> None:
        for item, maps in zip(batch, out, strict=True):
            _, height, width = item["image"].shape
            targets = self.compute((height, width), item["polygons"], self.config, item.get("ignore"))
            for name, array in maps.items():
                array[...] = getattr(targets, name)


class StoreCollate(_Collate):
    """Reads each item's targets from a store: no geometry, no hashing per batch.

    A drop-in for the baseline's ``DBCollateFN``: ``StoreCollate("val_targets.zarr")``
    takes the baseline's own dataset items. An item is found by its ``index`` if it has
    one, else by ``image_filename``, and served from the store only if it *is* the stored
    sample: the same size and the very word polygons the stored targets were made of
    (the maps depend on nothing else). Any other item (a training item, augmented, or an
    image the store does not hold) gets its targets computed with the fast path; how
    many is logged at debug level once per epoch and counted in ``computed``.

    ``shrink_ratio``, ``thresh_min`` and ``thresh_max`` are ``DBCollateFN``'s; given, they
    must be the store's. The store is checked once, here, against ``dataset`` (a
    :class:`UFODataset`) or else the sources it records: file names and order, parameters,
    geometry, every image's content hash, every entry done. ``check=False`` skips that
    (a store whose sources are elsewhere). A store that a precompute job is writing (its
    lock is held) is refused: rerun the collate once the job is done.
    """

    def __init__(
        self,
        store: TargetStore | str | Path,
        dataset: UFODataset | None = None,
        *,
        shrink_ratio: float | None = None,
        thresh_min: float | None = None,
        thresh_max: float | None = None,
        inference_mode: bool = False,
        check: bool = True,
    ) -> None:
        super().__init__(inference_mode)
        if not isinstance(store, (TargetStore, str, Path)):
            raise TypeError(
                f"StoreCollate(store, dataset=None, ...): store is a path, a URL or a TargetStore, got {store!r}"
            )
        self.store = store if isinstance(store, TargetStore) else open_store(store)
        asked = {"shrink_ratio": shrink_ratio, "thresh_min": thresh_min, "thresh_max": thresh_max}
        config = TargetConfig(**{**self.store.config.to_dict(), **{k: v for k, v in asked.items() if v is not None}})
        if config != self.store.config:
            raise StoreError(f"{self.store.path}: made with {self.store.config}, the collate asks for {config}")
        self.config = config
        self.check = check
        self._on_the_fly = OnTheFlyCollate(config, compute=compute_targets)  # for items not stored
        self.served = self.computed = 0  # items, in this process
        self._epoch: Counter = Counter()
        self._epoch_names: set[str] = set()
        self._words: dict[int, tuple] = {}  # entry -> its word polygons (_flat), kept across epochs
        writing = held(self.store.location)
        if writing is not None:
            raise StoreError(
                f"{self.store.path}: a precompute job is writing this store ({describe(writing)}); "
                "wait for it to finish"
            )
        if check:
            check_store(dataset or _sources(self.store), self.store)

    def fill(self, batch: Sequence[dict], out: list[dict[str, np.ndarray]]) -> None:
        """Stored items' maps read together (their chunks fetched at once), the others computed."""
        indices = [self.stored_index(item) for item in batch]
        stored = [position for position, index in enumerate(indices) if index is not None]
        others = [position for position, index in enumerate(indices) if index is None]
        if stored:
            self.store.read_maps_into([indices[p] for p in stored], [out[p] for p in stored], checked=self.check)
        if others:
            self._on_the_fly.fill([batch[p] for p in others], [out[p] for p in others])
        for item, index in zip(batch, indices, strict=True):
            self._count(item["image_filename"], index is not None)

    def stored_index(self, item: dict) -> int | None:
        """The entry whose targets are this item's, or None when the item is not the stored sample."""
        _, height, width = item["image"].shape
        if height != self.store.size or width != self.store.size:
            return None
        index = item.get("index")
        if index is None:
            index = self.store.find(item["image_filename"])
            if index is None:
                return None
        words = self._words.get(index)
        if words is None:
            words = _flat(self.store.words(index)[0])
            if len(self._words) < _WORDS_KEPT:
                self._words[index] = words
        polygons = _flat([np.asarray(polygon).reshape(-1, 2) for polygon in item["polygons"]])
        same = polygons[0] == words[0] and np.array_equal(polygons[1], words[1])
        return index if same else None

    def _count(self, name: str, served: bool) -> None:
        if name in self._epoch_names:  # an image seen again: a new epoch has begun
            self._report()
        self._epoch_names.add(name)
        self._epoch[served] += 1
        self.served += served
        self.computed += not served

    def _report(self) -> None:
        if self._epoch[False]:
            logger.debug(
                "StoreCollate(%s): last epoch %d items read from the store, %d computed on the fly "
                "(not the stored sample: augmented, or not in the store)",
                self.store.path,
                self._epoch[True],
                self._epoch[False],
            )
        self._epoch.clear()
        self._epoch_names.clear()


def _flat(polygons: list[np.ndarray]) -> tuple[tuple[int, ...], np.ndarray]:
    """(N, 2) polygons as (their lengths, all their points): two cheap comparisons instead of N."""
    points = np.concatenate(polygons) if polygons else np.zeros((0, 2), dtype=np.float32)
    return tuple(len(polygon) for polygon in polygons), points


def _sources(store: TargetStore) -> UFODataset:
    """The dataset the store was made from, as it records it."""
    sources = store.attrs["sources"]
    images, annotations = Path(sources["images"]), Path(sources["annotations"])
    if not images.is_dir() or not annotations.is_file():
        raise StoreError(
            f"{store.path}: the sources it was made from are not here ({images}, {annotations}); "
            "pass the dataset to check it against (dataset=UFODataset(...)), or check=False"
        )
    return UFODataset(images, annotations, size=store.size, pad=store.pad)


def check_store(dataset: UFODataset, store: TargetStore) -> None:
    """Raise StoreError, saying what differs and how to fix it, unless ``store`` serves ``dataset``."""
    fix = (
        f"bring it up to date with: ocr-targets precompute --images {dataset.images} "
        f"--annotations {dataset.annotations_path} --out {store.path}"
    )
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
    settings = settings_digest(store.config, store.size, store.pad)
    current = current_hashes(dataset.images, dataset.annotations, settings, *store.image_files())
    stale = [name for name, a, b, d in zip(dataset.filenames, stored, current, done, strict=True) if a != b or not d]
    if stale:
        shown = ", ".join(stale[:5]) + (", ..." if len(stale) > 5 else "")
        raise StoreError(
            f"{store.path}: {len(stale)} of {len(store)} entries are missing or stale "
            f"(image or words changed since precompute: {shown}); {fix}"
        )
