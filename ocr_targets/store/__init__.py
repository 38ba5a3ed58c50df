"""The zarr store of precomputed targets: made by the job, read by dataset index at train time.

Its public names are the ones re-exported here; each private module holds one concern:
:mod:`._layout` (the format: arrays, shards, codecs), :mod:`._settings` (what a store is made
with), :mod:`._files` (the objects beside the arrays), :mod:`._rows` (an entry as the arrays
hold it), :mod:`._blocks` (a task's writing of one block), :mod:`._writer` (the job's client:
creating, laying out, marking done), :mod:`._lock` (one writer at a time), :mod:`._reader`
(reading by index) and :mod:`._zarr` (every use of zarr beyond its documented API). What the
job writes with is :mod:`.writing`, apart from what a reader needs.
"""

from ..choices import DEFAULT_BLOCK, THRESH_DTYPES, thresh_tolerance
from ._errors import Changed, NotDone, OtherStack, StoreError, Unowned, Unreadable
from ._layout import SCHEMA_VERSION
from ._reader import Entry, TargetStore, open_store
from ._settings import StoreSettings

__all__ = [
    "DEFAULT_BLOCK",
    "SCHEMA_VERSION",
    "THRESH_DTYPES",
    "Changed",
    "Entry",
    "NotDone",
    "OtherStack",
    "StoreError",
    "StoreSettings",
    "TargetStore",
    "Unowned",
    "Unreadable",
    "open_store",
    "thresh_tolerance",
]
