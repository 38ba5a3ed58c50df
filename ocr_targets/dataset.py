"""The UFO validation split as a PyTorch dataset, with the competition's validation transform."""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numba
import numpy as np

from ._torch import torch
from .arrays import MAPS
from .batch import batch_tensor, item_maps, target_tensors
from .geometry import quarter_turn
from .images import load_sample
from .location import Location
from .sources import Sources
from .stacks import BASELINE
from .store import StoreError, TargetStore, open_store
from .ufo import ImageAnnotation, read_annotations, read_ufo

# The baseline's Normalize: ImageNet statistics on [0, 1] pixels.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class UFODataset(torch.utils.data.Dataset):
    """Images and words of a UFO annotation file, in file order, at the validation geometry.

    Items are what the baseline dataset hands its collate (``image`` as a normalised
    CHW float tensor, ``image_filename``, ``shape``, ``inverse_matrix``, ``polygons``
    as (1, N, 2) float32, the words that survive the resize), plus ``ignore`` and
    ``index``, by which the store collate finds the item's targets.
    """

    def __init__(
        self,
        images: str | Path,
        annotations: str | Path,
        size: int = 640,
        pad: str = "center",
        mean: Sequence[float] = MEAN,
        std: Sequence[float] = STD,
    ) -> None:
        self.sources = Sources.of(images, annotations)
        self.images = _folder(images)
        self.annotations_path = _folder(annotations)
        self.size = size
        self.pad = pad
        self.normalize = Normalize(mean, std)
        self.annotations: list[ImageAnnotation] = read_annotations(self.sources.annotations)
        self.filenames = [annotation.name for annotation in self.annotations]

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, index: int) -> dict:
        sample = load_sample(self.images, self.annotations[index], self.size, self.pad)
        pixels = self.normalize(sample.letterbox.image(sample.image))
        height, width = sample.image.shape[:2]
        return _item(
            self.images,
            index,
            sample.annotation.name,
            torch.from_numpy(pixels.transpose(2, 0, 1)),
            (height, width),
            sample.orientation,
            sample.letterbox.inverse_matrix,
            sample.polygons,
            sample.ignore,
        )


class StoreDataset(torch.utils.data.Dataset):
    """The items of :class:`UFODataset`, served from a store made ``--with-images``:
    no image file is read and nothing is decoded or resized (the stored image is the
    validation transform's output; only ``Normalize`` is applied here).

    A drop-in for the baseline's ``OCRDataset`` as its validation and test set, by
    configuration alone: it has the baseline dataset's ``anns`` (the annotation file's words,
    as ``OCRDataset`` parses them: the ground truth its metric scores against) and
    ``image_path``, both from the sources the store records unless given.

    A DataLoader reads a batch's items together (``__getitems__``): every chunk of the batch
    (images, maps, words) in one call, decoded on zarrs' threads, each image normalised and
    each map written straight into the batch's tensors, which the list of items carries
    (:class:`StoredBatch`) for a :class:`~ocr_targets.collate.StoreCollate` of the same store
    to hand on as they are. With ``num_workers=0`` nothing is copied between processes at all.

    ``compact=True`` leaves ``Normalize`` out: the image stays the stored (3, H, W) uint8, a
    quarter of the bytes for a DataLoader's workers to hand over; :func:`expand_batch`, in the
    main process or on the device, makes the batch the baseline's, bit for bit."""

    def __init__(
        self,
        store: TargetStore | str | Path,
        image_path: str | Path | None = None,
        annotation_path: str | Path | None = None,
        mean: Sequence[float] = MEAN,
        std: Sequence[float] = STD,
        compact: bool = False,
    ) -> None:
        self.store = store if isinstance(store, TargetStore) else open_store(store)
        self.store.require_stack(BASELINE, "StoreDataset")
        self.sources = Sources.recorded(self.store, image_path, annotation_path)
        if not self.store.has_images:
            remake = self.sources.precompute(self.store, with_images=True)
            raise StoreError(f"{self.store.path}: holds no images; make it with them: {remake}")
        self.image_path = _folder(self.sources.images.url)
        self.annotation_path = self.sources.annotations.url
        self.compact = compact
        self.normalize = Normalize(mean, std)
        self.filenames = self.store.filenames
        self.size, self.pad = self.store.size, self.store.pad
        self._anns: OrderedDict | None = None
        self._threads: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self.store)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_threads": None}  # each process starts its own

    @property
    def anns(self) -> OrderedDict:
        """Image name -> its words as the baseline's ``OCRDataset`` holds them (a list of (1, N, 2)
        int32 arrays, rounded from the file's points, or None), in store order: what the
        baseline's ``OCRPLModule`` scores its predictions against. Read once, when first asked."""
        if self._anns is None:
            entries = read_ufo(self.sources.annotations)
            self._anns = OrderedDict((name, baseline_words(entries.get(name, {}))) for name in self.filenames)
        return self._anns

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> StoredBatch:
        """Items ``indices``, read together, with the batch tensors they are views of."""
        rows = self.store.read_items(indices)
        size = self.size
        images = batch_tensor((len(rows), 3, size, size), torch.uint8 if self.compact else torch.float32)
        targets = target_tensors(len(rows), size, size, self.compact)

        def fill(position: int) -> None:
            row = rows[position]
            if self.compact:
                np.copyto(images[position].numpy(), row["images"].transpose(2, 0, 1))
            else:
                self.normalize.planar(row["images"], images[position].numpy())
            self.store.decode_maps(row, item_maps(targets, position))

        if len(rows) > 1 and torch.utils.data.get_worker_info() is None:  # workers: their parallelism is theirs
            self._threads = self._threads or ThreadPoolExecutor(os.cpu_count() or 1)
            list(self._threads.map(fill, range(len(rows))))
        else:
            for position in range(len(rows)):
                fill(position)
        items = []
        for position, (index, row) in enumerate(zip(indices, rows, strict=True)):
            height, width, orientation = (int(value) for value in row["image_info"][:3])
            items.append(
                _item(
                    self.image_path,
                    index % len(self),
                    self.filenames[index],
                    images[position],
                    (height, width),
                    orientation,
                    row["matrices"][1],
                    row["words"],
                    [bool(flag) for flag in row["word_ignore"]],
                )
            )
        return StoredBatch(items, self.store, images, targets, self.compact)


class StoredBatch(list):
    """Items read from a store together, with the batch tensors their images and maps are views
    of: a collate of the same store takes these tensors as the batch's, with no copy."""

    def __init__(
        self, items: list[dict], store: TargetStore, images: torch.Tensor, targets: dict, compact: bool
    ) -> None:
        super().__init__(items)
        self.store, self.images, self.targets, self.compact = store, images, targets, compact


def baseline_words(entry: dict) -> list[np.ndarray] | None:
    """One image's words as the baseline's ``OCRDataset`` keeps them for its metric: each word
    with a non-empty list of points as a (1, N, 2) int32 array of the rounded points; None for
    an image without words."""
    words = entry.get("words") if isinstance(entry, dict) else None
    if not isinstance(words, dict):
        return None
    polygons = [
        np.array([np.round(word["points"])], dtype=np.int32)
        for word in words.values()
        if isinstance(word.get("points"), list) and len(word["points"]) > 0
    ]
    return polygons or None


def _folder(where: str | Path) -> Path | str:
    """A source as the baseline's datasets hold it (a Path, which ``image_path / name`` joins),
    or an fsspec URL as given: a Path would make ``s3://b/x`` ``s3:/b/x``."""
    return str(where) if "://" in str(where) else Path(where)


def _item(folder, index, name, image, size, orientation, inverse_matrix, polygons, ignore) -> dict:
    """A dataset item with the baseline's keys (and ``ignore``, ``index``); ``image`` (C, H, W)."""
    height, width = size
    return {
        "image": image,
        "image_filename": name,
        "image_path": str(Location.of(folder) / name),  # an object key stays a URL
        "shape": (width, height),  # the upright image's size, as PIL gives it
        "raw_size": (height, width) if quarter_turn(orientation) else (width, height),  # as stored
        "orientation": orientation,
        "inverse_matrix": inverse_matrix,
        "polygons": [polygon.reshape(1, -1, 2) for polygon in polygons],
        "ignore": ignore,
        "index": index,
    }


class Normalize:
    """``(pixel - 255 * mean) / (255 * std)`` in float32, bit for bit as albumentations'
    ``Normalize`` computes it (OpenCV's subtract, then multiply by the float32 reciprocal).

    A uint8 channel has 256 values, so the operations run once on a 256-entry table and
    ``cv2.LUT`` applies it: the same bits, in one pass over the image.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        mean = np.array(mean, dtype=np.float32) * np.float32(255)
        scale = np.reciprocal(np.array(std, dtype=np.float32) * np.float32(255))
        if mean.shape != (3,) or scale.shape != (3,):
            raise ValueError(f"mean and std need 3 values (RGB), got {list(mean)} and {list(std)}")
        table = np.repeat(np.arange(256, dtype=np.float32)[None, :, None], 3, axis=2)
        cv2.subtract(table, (*mean.astype(np.float64), 0.0), table)
        cv2.multiply(table, (*scale.astype(np.float64), 1.0), table)
        self.table = table  # (1, 256, 3) float32

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return cv2.LUT(image, self.table)

    def planar(self, image: np.ndarray, out: np.ndarray) -> None:
        """``image`` (H, W, 3) uint8 normalised into ``out`` (3, H, W) float32, the layout of a
        batch: the same table, looked up and transposed in one pass (a third of LUT + copy)."""
        _planar(image, self.planes, out)

    @functools.cached_property
    def planes(self) -> np.ndarray:
        return np.ascontiguousarray(self.table[0].T)  # (3, 256)


@numba.njit(nogil=True, cache=True)
def _planar(image: np.ndarray, planes: np.ndarray, out: np.ndarray) -> None:
    height, width, _ = image.shape
    for y in range(height):
        for x in range(width):
            out[0, y, x] = planes[0, image[y, x, 0]]
            out[1, y, x] = planes[1, image[y, x, 1]]
            out[2, y, x] = planes[2, image[y, x, 2]]


def expand_batch(batch: dict, mean: Sequence[float] = MEAN, std: Sequence[float] = STD) -> dict:
    """A compact batch (``StoreDataset(compact=True)`` and ``StoreCollate(compact=True)``: uint8
    images and probability maps) made the baseline's (float32, images normalised), where the
    tensors are: in the main process, or on the GPU after the transfer (Lightning's
    ``on_after_batch_transfer``). Bit for bit what the drop-in path makes: a normalised pixel is
    looked up in the table :class:`Normalize` makes, a 0/1 map value converted exactly."""
    images = batch["images"]
    if images.dtype == torch.uint8:
        table = _table(tuple(mean), tuple(std))  # (3, 256) float32
        if images.device.type == "cpu":  # OpenCV's table lookup: a quarter of the time of torch's indexing
            expanded = torch.empty(images.shape, dtype=torch.float32)
            pixels, out, lookup = images.numpy(), expanded.numpy(), table.numpy()
            for index in range(len(pixels)):
                for channel in range(3):
                    cv2.LUT(pixels[index, channel], lookup[channel], dst=out[index, channel])
        else:
            table = table.to(images.device)
            expanded = torch.stack([table[channel][images[:, channel].long()] for channel in range(3)], dim=1)
        batch["images"] = expanded
    for spec in MAPS:
        if spec.binary and spec.dtype == np.float32 and spec.batch_key in batch:
            batch[spec.batch_key] = batch[spec.batch_key].float()
    return batch


@functools.lru_cache(maxsize=4)
def _table(mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(Normalize(mean, std).table[0].T))
