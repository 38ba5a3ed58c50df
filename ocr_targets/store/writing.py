"""The job's side of the store, apart from the reader's public names: its client
(:class:`StoreWriter`), a task's writing of one block (:class:`Blocks`, :class:`Record`), the
one-writer lock, the capacity check the job makes before any geometry, and the worker's
adoption of zarrs' thread pool."""

from ._blocks import Blocks
from ._layout import over_capacity
from ._lock import StoreLock
from ._rows import Record
from ._writer import StoreWriter
from ._zarr import adopt_pool

__all__ = ["Blocks", "Record", "StoreLock", "StoreWriter", "adopt_pool", "over_capacity"]
