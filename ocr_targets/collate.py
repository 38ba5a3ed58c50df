"""Collate functions: targets read from a store, or computed on the fly.

Both are drop-in for the baseline's DB collate: the same keys, shapes and dtypes.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._torch import torch
from .arrays import BY_NAME
from .batch import item_maps, stack, target_tensors
from .config import TargetConfig
from .dataset import StoredBatch, UFODataset
from .geometry import PAD_MODES
from .maps import compute_targets, reference_targets
from .sources import Sources
from .stacks import BASELINE
from .staleness import check_store
from .store import StoreError, TargetStore, open_store
from .tally import Cause, Counts, Ended, Tally

logger = logging.getLogger(__name__)
# Entries whose word polygons a StoreCollate keeps per process (a few KB each): a validation
# set of this size reads only its maps from the second epoch on.
_WORDS_KEPT = 8192


class _Collate:
    """Stacks images and, unless in inference mode, has ``fill`` write the items' maps into the
    batch (:mod:`ocr_targets.batch`: the baseline's keys, shapes and dtypes, plus the masks)."""

    def __init__(self, inference_mode: bool = False, compact: bool = False) -> None:
        self.inference_mode = inference_mode
        self.compact = compact

    def fill(self, batch: Sequence[dict], out: list[dict[str, np.ndarray]]) -> None:
        """Write each item's maps into its ``out`` (views of the batch tensors)."""
        raise NotImplementedError

    def __call__(self, batch: Sequence[dict]) -> OrderedDict:
        collated = OrderedDict(
            images=self.images(batch),
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

    def images(self, batch: Sequence[dict]) -> torch.Tensor:
        return stack([item["image"] for item in batch])

    def targets(self, batch: Sequence[dict]) -> dict[str, torch.Tensor]:
        """The batch's maps and masks, each item's written in place by ``fill``."""
        _, height, width = batch[0]["image"].shape
        tensors = target_tensors(len(batch), height, width, self.compact)
        self.fill(batch, [item_maps(tensors, index) for index in range(len(batch))])
        return tensors


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
            drawn = {name: array for name, array in maps.items() if array.dtype == BY_NAME[name].dtype}
            targets = self.compute((height, width), item["polygons"], self.config, item.get("ignore"), out=drawn)
            for name, array in maps.items():
                if name not in drawn:  # a compact batch's uint8 probability map
                    array[...] = getattr(targets, name)


class StoreCollate(_Collate):
    """Reads each item's targets from a store: no geometry, no hashing per batch.

    A drop-in for the baseline's ``DBCollateFN``: ``StoreCollate("val_targets.zarr")``
    takes the baseline's own dataset items. An item is found by its ``index`` if it has
    one, else by ``image_filename``, and served from the store only if its maps are the stored
    ones: the same size, and word polygons equal to the stored ones as the int32 points the
    maps are made of (the batch takes the item's own inverse matrix). A batch that a
    :class:`~ocr_targets.dataset.StoreDataset` of the same store read at once is served as
    it is, with no matching and no copy. Any other item (a training item,
    augmented, or an image the store does not hold) gets its targets computed with the fast
    path. Items of images the store holds that are computed anyway are reported once per
    epoch, as a warning with the first one's name, the cause and the fix; ``this_epoch`` and
    ``last_epoch`` give the counts in the main process, DataLoader workers included.

    ``compact=True`` makes the probability maps uint8 (0/1): with ``StoreDataset(compact=True)``
    a batch is under half the bytes for DataLoader workers to hand over;
    :func:`ocr_targets.dataset.expand_batch` then makes it the baseline's, bit for bit.

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
        compact: bool = False,
    ) -> None:
        super().__init__(inference_mode, compact)
        if not isinstance(store, (TargetStore, str, Path)):
            raise TypeError(
                f"StoreCollate(store, dataset=None, ...): store is a path, a URL or a TargetStore, got {store!r}"
            )
        self.store = store if isinstance(store, TargetStore) else open_store(store)
        self.store.require_stack(BASELINE, "StoreCollate")
        asked = {"shrink_ratio": shrink_ratio, "thresh_min": thresh_min, "thresh_max": thresh_max}
        config = TargetConfig(**{**self.store.config.to_dict(), **{k: v for k, v in asked.items() if v is not None}})
        if config != self.store.config:
            raise StoreError(f"{self.store.path}: made with {self.store.config}, the collate asks for {config}")
        self.config = config
        self.check = check
        self._on_the_fly = OnTheFlyCollate(config, compute=compute_targets)  # for items not stored
        self._tally = Tally(len(self.store))
        self._words: dict[int, tuple] = {}  # entry -> (its words as _flat int32, its inverse matrix)
        writing = self.store.writing()
        if writing is not None:
            raise StoreError(
                f"{self.store.path}: a precompute job is writing this store ({writing}); wait for it to finish"
            )
        if check:
            check_store(self.store, dataset)

    @property
    def this_epoch(self) -> Counts:
        """The items of the epoch under way, counted in every process that runs this collate."""
        return self._tally.this_epoch

    @property
    def last_epoch(self) -> Counts:
        """The items of the last whole epoch: every stored entry seen once (or one seen again)."""
        return self._tally.last_epoch

    def images(self, batch: Sequence[dict]) -> torch.Tensor:
        return batch.images if self._carried(batch) else super().images(batch)

    def targets(self, batch: Sequence[dict]) -> dict[str, torch.Tensor]:
        """A batch its dataset read from this store with its targets (:class:`StoredBatch`) is
        served as it is; any other batch is matched item by item (:meth:`fill`)."""
        if not self._carried(batch):
            return super().targets(batch)
        self._count([(item["index"], Cause.SERVED) for item in batch])
        return batch.targets

    def _carried(self, batch: Sequence[dict]) -> bool:
        """Whether ``batch`` carries its tensors, read from this store, in this collate's format."""
        return (
            isinstance(batch, StoredBatch)
            and batch.store.path == self.store.path
            and batch.store.generation == self.store.generation  # else matched, and this handle's read refuses
            and batch.compact == self.compact
        )

    def fill(self, batch: Sequence[dict], out: list[dict[str, np.ndarray]]) -> None:
        """Stored items' maps read together (their chunks fetched at once), the others computed."""
        matches = self._match(batch)
        stored = [position for position, (_, cause) in enumerate(matches) if cause == Cause.SERVED]
        others = [position for position, (_, cause) in enumerate(matches) if cause != Cause.SERVED]
        if stored:
            indices = [matches[p][0] for p in stored]
            self.store.read_maps_into(indices, [out[p] for p in stored], checked=self.check)
        if others:
            self._on_the_fly.fill([batch[p] for p in others], [out[p] for p in others])
        self._count(matches, batch)

    def _count(self, matches: list[tuple[int | None, Cause]], batch: Sequence[dict] = ()) -> None:
        """Count each item; at an epoch's end, warn of the items of stored images computed anyway.
        ``batch``, the items matched, gives an item's image size when that is why."""
        for position, (index, cause) in enumerate(matches):
            shape = tuple(batch[position]["image"].shape[1:]) if cause == Cause.SIZE else (0, 0)
            ended = self._tally.count(index, cause, shape)
            if ended is not None and ended.counts.stored_computed:
                logger.warning(self._report(ended))

    def _match(self, batch: Sequence[dict]) -> list[tuple[int | None, Cause]]:
        """Per item: the entry of its image (None: not in the store) and whether its maps are the
        stored ones (Cause.SERVED) or why not. The words of the batch's entries not yet kept are
        read in one call."""
        found = [_entry_of(item, self.store) for item in batch]
        wanted = sorted({index for index in found if index is not None and index not in self._words})
        read = {}
        for index, (polygons, _, inverse) in zip(wanted, self.store.batch_words(wanted), strict=True):
            read[index] = (_flat(polygons), inverse)
            if len(self._words) < _WORDS_KEPT:
                self._words[index] = read[index]
        causes = []
        for item, index in zip(batch, found, strict=True):
            stored = None if index is None else self._words.get(index) or read[index]
            causes.append((index, Cause.NOT_STORED if stored is None else _cause(item, self.store.size, *stored)))
        return causes

    def _report(self, ended: Ended) -> str:
        epoch, (height, width) = ended
        name = self.store.filenames[epoch.first]
        seen = epoch.served + epoch.stored_computed
        if epoch.cause == Cause.SIZE and height != width:
            fix = f"its image is {height}x{width}, not square: give the collate the validation transform's items"
        elif epoch.cause == Cause.SIZE:
            fix = f"remake the store at the dataset's size: {self._remake(size=height)}"
        elif epoch.cause == Cause.PADDING:
            other = next(pad for pad in PAD_MODES if pad != self.store.pad)
            fix = f"the store pads {self.store.pad}; for the other: {self._remake(pad=other)}"
        else:
            fix = f"`ocr-targets verify {self.store.path}` names the stale entries; {self._remake()} updates them"
        return (
            f"StoreCollate({self.store.path}): {epoch.stored_computed} of the epoch's {seen} items of images the store "
            f"holds were computed on the fly instead of read from it, which is slower (the first: {name}: "
            f"{epoch.cause.text}); {fix}"
        )

    def _remake(self, **changes: Any) -> str:
        return Sources.recorded(self.store).precompute(self.store, **changes)


def _entry_of(item: dict, store: TargetStore) -> int | None:
    """The entry of the item's image: by its ``index`` when that entry has the item's file name
    (a training set's items carry indices of their own), else by the name."""
    index, name = item.get("index"), item["image_filename"]
    if index is not None and 0 <= index < len(store) and store.filenames[index] == name:
        return index
    return store.find(name)


def _cause(item: dict, size: int, words: tuple, inverse: np.ndarray) -> Cause:
    """Cause.SERVED if ``item``'s maps are the stored ones, else why not.

    The maps depend on the image size and the words as int32 points (:func:`_flat`) alone, so
    those decide; the batch takes the item's own inverse matrix, which may be computed
    otherwise (the baseline at 2467d39 keeps the centered crop box under top-left padding).
    A mismatch whose inverse matrix differs too is told as another padding."""
    _, height, width = item["image"].shape
    if height != size or width != size:
        return Cause.SIZE
    polygons = _flat([np.asarray(polygon).reshape(-1, 2) for polygon in item["polygons"]])
    if polygons[0] == words[0] and np.array_equal(polygons[1], words[1]):
        return Cause.SERVED
    moved = "inverse_matrix" in item and not np.array_equal(np.asarray(item["inverse_matrix"]), inverse)
    return Cause.PADDING if moved else Cause.WORDS


def _flat(polygons: list[np.ndarray]) -> tuple[tuple[int, ...], np.ndarray]:
    """(N, 2) polygons as (their lengths, all their points truncated to int32, as the maps take
    them): two comparisons instead of N, and float points that differ in low bits still match."""
    points = np.concatenate(polygons) if polygons else np.zeros((0, 2), dtype=np.float32)
    return tuple(len(polygon) for polygon in polygons), points.astype(np.int32)
