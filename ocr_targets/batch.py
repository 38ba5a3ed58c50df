"""The batch tensors a collate hands the model: their keys, shapes and dtypes, in one place.

``prob_maps`` and ``thresh_maps`` are float32 (B, 1, H, W) as in the baseline (a compact batch
keeps ``prob_maps`` as its 0/1 uint8); the DB-style ``prob_masks`` and ``thresh_masks`` are
uint8 (B, H, W). Each item's maps are written straight into views of these tensors, by the
collate or, for a batch read from a store at once, by the dataset: no per-item arrays to stack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._torch import torch

# batch key -> (the item's name for its map, whether it has the (1,) channel axis, dtype)
TARGETS = {
    "prob_maps": ("prob_map", True, torch.float32),
    "thresh_maps": ("thresh_map", True, torch.float32),
    "prob_masks": ("prob_mask", False, torch.uint8),
    "thresh_masks": ("thresh_mask", False, torch.uint8),
}


def batch_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An empty batch tensor; in a DataLoader worker, in shared memory, as ``default_collate``
    makes its own: the batch then reaches the main process without being copied."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    template = torch.empty(0, dtype=dtype)
    return template.new(template._typed_storage()._new_shared(math.prod(shape))).view(shape)


def target_tensors(count: int, height: int, width: int, compact: bool = False) -> dict[str, torch.Tensor]:
    """Empty target tensors of a batch (compact: the 0/1 probability map as uint8)."""
    tensors = {}
    for key, (_, channel, dtype) in TARGETS.items():
        dtype = torch.uint8 if compact and key == "prob_maps" else dtype
        tensors[key] = batch_tensor((count, 1, height, width) if channel else (count, height, width), dtype)
    return tensors


def item_maps(tensors: dict[str, torch.Tensor], index: int) -> dict[str, np.ndarray]:
    """Item ``index``'s maps in the batch, as (H, W) numpy views by the item's names (``prob_map``, ...)."""
    views = {}
    for key, tensor in tensors.items():
        height, width = tensor.shape[-2:]
        views[TARGETS[key][0]] = tensor[index].reshape(height, width).numpy()
    return views


def stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The tensors stacked along a new first axis, in shared memory in a DataLoader worker."""
    first = tensors[0]
    return torch.stack(list(tensors), out=batch_tensor((len(tensors), *first.shape), first.dtype))
