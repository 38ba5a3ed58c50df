"""The batch tensors a collate hands the model: their keys, shapes and dtypes, in one place.

Each map of :data:`ocr_targets.arrays.MAPS` under its batch key: ``prob_maps`` and
``thresh_maps`` float32 (B, 1, H, W) as in the baseline (a compact batch keeps ``prob_maps`` as
its 0/1 uint8), the DB-style ``prob_masks`` and ``thresh_masks`` uint8 (B, H, W). Each item's
maps are written straight into views of these tensors, by the collate or, for a batch read
from a store at once, by the dataset: no per-item arrays to stack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._torch import torch
from .arrays import MAPS

_DTYPES = {np.float32: torch.float32, np.uint8: torch.uint8}


def batch_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An empty batch tensor; in a DataLoader worker, in shared memory, as ``default_collate``
    makes its own: the batch then reaches the main process without being copied."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    template = torch.empty(0, dtype=dtype)
    return template.new(template._typed_storage()._new_shared(math.prod(shape))).view(shape)


def target_tensors(count: int, height: int, width: int, compact: bool = False) -> dict[str, torch.Tensor]:
    """Empty target tensors of a batch, by batch key (compact: the 0/1 maps as uint8, which
    :func:`~ocr_targets.dataset.expand_batch` makes float32)."""
    tensors = {}
    for spec in MAPS:
        dtype = torch.uint8 if compact and spec.binary else _DTYPES[spec.dtype]
        shape = (count, 1, height, width) if spec.channel else (count, height, width)
        tensors[spec.batch_key] = batch_tensor(shape, dtype)
    return tensors


def item_maps(tensors: dict[str, torch.Tensor], index: int) -> dict[str, np.ndarray]:
    """Item ``index``'s maps in the batch, as (H, W) numpy views by the item's names (``prob_map``, ...)."""
    views = {}
    for spec in MAPS:
        tensor = tensors[spec.batch_key]
        views[spec.name] = tensor[index].reshape(tensor.shape[-2:]).numpy()
    return views


def stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The tensors stacked along a new first axis, in shared memory in a DataLoader worker."""
    first = tensors[0]
    return torch.stack(list(tensors), out=batch_tensor((len(tensors), *first.shape), first.dtype))
