"""Shard indexes kept per process, for reading from object storage.

zarr reads one inner chunk of a shard in two requests, one after the other: the shard's
index (the last bytes of the object), then the chunk's byte range. Kept, the index costs
its request once per shard and process, and a batch then costs one round trip, not two.
"""

from __future__ import annotations

from zarr.abc.store import ByteRequest, Store, SuffixByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore


class ShardIndexes(WrapperStore):
    """A store that keeps every shard index read through it: the indexes of the store as it
    was when opened, as zarr keeps its metadata. A store rewritten since must be reopened."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._indexes: dict[tuple[str, int], Buffer] = {}

    async def get(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None) -> Buffer | None:
        if not isinstance(byte_range, SuffixByteRequest):  # zarr reads a shard's index as its last bytes
            return await self._store.get(key, prototype, byte_range)
        kept = self._indexes.get((key, byte_range.suffix))
        if kept is None:
            kept = await self._store.get(key, prototype, byte_range)
            if kept is not None:  # a missing shard stays unknown: it may be written yet
                self._indexes[(key, byte_range.suffix)] = kept
        return kept
