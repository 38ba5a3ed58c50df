"""The UFO validation split as a PyTorch dataset, with the competition's validation transform."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ._torch import torch
from .geometry import quarter_turn
from .images import load_sample
from .store import StoreError, TargetStore, open_store
from .ufo import ImageAnnotation, parse_entry, read_ufo

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
        self.images = Path(images)
        self.annotations_path = Path(annotations)
        self.size = size
        self.pad = pad
        self.normalize = Normalize(mean, std)
        entries = read_ufo(self.annotations_path)
        self.filenames = list(entries)
        self.annotations: list[ImageAnnotation] = [parse_entry(name, entries[name]) for name in self.filenames]

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
            pixels,
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

    ``compact=True`` leaves ``Normalize`` out: the image stays the stored (3, H, W) uint8, a
    quarter of the bytes for a DataLoader's workers to hand over; :func:`expand_batch`, in the
    main process or on the device, makes the batch the baseline's, bit for bit."""

    def __init__(
        self,
        store: TargetStore | str | Path,
        mean: Sequence[float] = MEAN,
        std: Sequence[float] = STD,
        compact: bool = False,
    ) -> None:
        self.store = store if isinstance(store, TargetStore) else open_store(store)
        if not self.store.has_images:
            raise StoreError(
                f"{self.store.path}: holds no images; make it with `ocr-targets precompute --with-images --overwrite`"
            )
        self.images = Path(self.store.attrs["sources"]["images"])
        self.normalize = (lambda image: image) if compact else Normalize(mean, std)
        self.filenames = self.store.filenames
        self.size, self.pad = self.store.size, self.store.pad

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> dict:
        entry = self.store.entry(index, maps=False)  # one read, checked: its own image's, the store unchanged
        return _item(
            self.images,
            entry.index,
            entry.filename,
            self.normalize(entry.image),
            entry.original_size,
            entry.orientation,
            entry.inverse_matrix,
            entry.words,
            entry.ignore,
        )


def _item(folder, index, name, pixels, size, orientation, inverse_matrix, polygons, ignore) -> dict:
    """A dataset item with the baseline's keys (and ``ignore``, ``index``)."""
    height, width = size
    return {
        "image": torch.from_numpy(pixels.transpose(2, 0, 1)),
        "image_filename": name,
        "image_path": str(folder / name),
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
    if "prob_maps" in batch:
        batch["prob_maps"] = batch["prob_maps"].float()
    return batch


@functools.lru_cache(maxsize=4)
def _table(mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(Normalize(mean, std).table[0].T))
