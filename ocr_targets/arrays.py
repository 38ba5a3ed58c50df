"""The target maps, declared once: what each is in memory, how the store keeps it, which batch
key carries it, whether ``verify`` compares it and how ``show`` draws it.

The store's layout, its rows and reader, the batch, ``verify`` and ``show`` iterate this table:
a new map is a row here, a field of :class:`~ocr_targets.maps.Targets` and the code that
computes it (a test holds the table against the fields).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class MapSpec(NamedTuple):
    name: str  # the field of Targets and of a store Entry, the name an item's map goes by
    dtype: type  # in memory: float32 or uint8
    binary: bool  # 0/1 values: a uint8 channel of the store's ``binary_maps``; else an array of its own
    batch_key: str  # the batch's key for the stacked maps
    channel: bool  # (B, 1, H, W) in a batch, as the baseline's maps; else (B, H, W)
    verified: bool  # whether ``verify`` compares it with the map computed anew
    panel: str | None  # the title of its panel in ``show`` (None: drawn on another's panel)
    masked_by: str | None = None  # on its panel, the pixels where this map is 0 are drawn red


MAPS = (
    MapSpec(
        "prob_map",
        np.float32,
        True,
        "prob_maps",
        True,
        True,
        "probability map (red: out of its mask)",
        masked_by="prob_mask",
    ),  # fmt: skip
    MapSpec("thresh_map", np.float32, False, "thresh_maps", True, True, "threshold map"),
    MapSpec("prob_mask", np.uint8, True, "prob_masks", False, True, None),
    MapSpec("thresh_mask", np.uint8, True, "thresh_masks", False, True, "threshold mask"),
)
BY_NAME = {spec.name: spec for spec in MAPS}
BINARY_MAPS = tuple(spec.name for spec in MAPS if spec.binary)  # the channels of binary_maps, in order
FLOAT_MAPS = tuple(spec.name for spec in MAPS if not spec.binary)  # each stored as an array of that name
