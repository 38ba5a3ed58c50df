"""The zarr store of precomputed targets: its layout (:mod:`._layout`), its arrays and their
I/O (:mod:`._arrays`), the writer's lock (:mod:`._lock`) and writing it (:mod:`._writer`).
Reading it by dataset index is :mod:`ocr_targets.reader`."""

from ._arrays import (
    Record,
    entry_row,
    gather,
    open_arrays,
    open_group,
    read,
    read_entries,
    read_rows,
    write_block,
)
from ._errors import StoreError
from ._layout import (
    BINARY_MAPS,
    DEFAULT_BLOCK,
    LEGACY_PAD,
    MAP_DTYPES,
    MAX_POINTS,
    MAX_POLYGONS,
    OFFSET_RUN,
    POINT_RUN,
    RAGGED_ARRAYS,
    SCHEMA_VERSION,
    THRESH_DTYPES,
    decode_thresh,
    encode_thresh,
    layout,
    thresh_tolerance,
)
from ._lock import StoreLock, describe, held
from ._writer import FILENAMES, STAGING, StoreWriter, missing_objects, read_attributes

__all__ = [
    "BINARY_MAPS",
    "DEFAULT_BLOCK",
    "FILENAMES",
    "LEGACY_PAD",
    "MAP_DTYPES",
    "MAX_POINTS",
    "MAX_POLYGONS",
    "OFFSET_RUN",
    "POINT_RUN",
    "RAGGED_ARRAYS",
    "SCHEMA_VERSION",
    "STAGING",
    "THRESH_DTYPES",
    "Record",
    "StoreError",
    "StoreLock",
    "StoreWriter",
    "decode_thresh",
    "encode_thresh",
    "entry_row",
    "describe",
    "held",
    "layout",
    "missing_objects",
    "open_arrays",
    "open_group",
    "gather",
    "read_attributes",
    "read",
    "read_entries",
    "read_rows",
    "thresh_tolerance",
    "write_block",
]
