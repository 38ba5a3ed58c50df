"""Every use of zarr beyond its documented API, in one place, so that an upgrade fails here
(``tests/test_zarr_contract.py`` checks each against the installed zarr).

What the store relies on:

- ``zarr.core.sync.sync``: to run a call's reads or writes together on zarr's event loop
  (:func:`gather`), so a batch's chunks are fetched concurrently and a call's overhead is
  paid once, not per chunk;
- ``AsyncArray._get_selection`` with an ``Indexer`` of our own (:class:`_Entries`), which
  zarr's public selections use too: whole entries scattered over shards in one selection;
- the key of a chunk, ``name/c/i/j/...`` (:func:`chunk_prefix`, :func:`shard_keys`), zarr
  v3's default encoding;
- the temporary file of a write to zarr's ``LocalStore``, ``*.partial``, which a killed
  write leaves behind (:data:`PARTIAL`);
- the text of the ``zarrs`` pipeline's errors, which carry the OS error in their message.

zarr-python runs with the ``zarrs`` codec pipeline (Rust: sharding, Zstd and the checksums
decoded in parallel) on a local store, and zarr-python's own pipeline on fsspec's (object
storage), which zarrs does not take. zarr-python, unlike TensorStore, survives the ``fork``
of a DataLoader's workers.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any

import zarr
from zarr.abc.buffer import Buffer, BufferPrototype
from zarr.abc.store import ByteRequest, Store, SuffixByteRequest
from zarr.api.asynchronous import open_array
from zarr.buffer import default_buffer_prototype
from zarr.core.indexing import ChunkProjection
from zarr.core.sync import sync
from zarr.storage import WrapperStore

from ..location import Location, disk_full
from ._errors import StoreError

ENGINE = {"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}
PARTIAL = ".partial"  # the suffix of LocalStore's temporary file, renamed over the key once written
_OS_ERROR = re.compile(r"os error (\d+)")  # zarrs: "... (os error 28)"


def zarr_store(location: Location, read_only: bool = False) -> Store:
    """The zarr store at ``location``: a LocalStore on a local disk (which zarrs decodes), else fsspec's."""
    if location.is_local:
        return zarr.storage.LocalStore(location.path, read_only=read_only)
    return zarr.storage.FsspecStore.from_url(location.url, storage_options=location.options, read_only=read_only)


def open_group(store: Location, mode: str = "r") -> zarr.Group:
    """The store's root group (``mode`` as zarr's: r, r+, a, w); opened to read from object
    storage, it keeps the shard indexes it reads (:class:`ShardIndexes`)."""
    opened = zarr_store(store, read_only=mode == "r")
    if mode == "r" and not store.is_local:
        opened = ShardIndexes(opened)
    return zarr.open_group(store=opened, mode=mode, zarr_format=3)


# zarrs decodes on rayon's global thread pool, whose threads a forked process does not have:
# there, a call that enters the pool waits forever. A process forked after this module was
# imported (a DataLoader worker, by default) decodes on the calling thread, one chunk after
# another, which never enters the pool; its parallelism is the other workers.
_IMPORTED_BY = os.getpid()


def adopt_pool() -> None:
    """Let this process decode on rayon's pool: for one forked from a process that imported this
    module but never entered the pool (the job's forkserver, which only imports), so that the
    pool is not made yet and this process makes its own."""
    global _IMPORTED_BY
    _IMPORTED_BY = os.getpid()


def open_arrays(group: zarr.Group, names: Iterable[str], threads: int | None = None) -> dict[str, zarr.Array]:
    """The arrays ``names`` of ``group``, each with the zarrs pipeline (chosen when an array opens),
    encoding and decoding on ``threads`` threads (default: one per core; one in a forked process)."""
    settings = {**ENGINE, "threading.max_workers": threads}
    if os.getpid() != _IMPORTED_BY:
        settings["threading.max_workers"] = 1
        settings["codec_pipeline.chunk_concurrent_minimum"] = settings["codec_pipeline.chunk_concurrent_maximum"] = 1
    names = list(names)
    mode = "r" if group.store.read_only else "r+"
    with zarr.config.set(settings):  # every array's metadata read and parsed together: half the time
        try:
            opened = gather(
                [open_array(store=group.store, path=name, zarr_format=3, mode=mode) for name in names], group
            )
        except FileNotFoundError as error:
            raise StoreError(
                f"{group.store}: an array is missing ({error}); rerun with --overwrite to rebuild"
            ) from None
    return {name: zarr.Array(array) for name, array in zip(names, opened, strict=True)}


def gather(calls: Iterable[Coroutine], what: object) -> list[Any]:
    """Run zarr's async calls together and return their results, once all have ended (so no
    write of a failed call is still under way). A full disk or another OS error stays OSError
    (the job acts on ENOSPC); a chunk that fails its checksum, or an unreadable object,
    becomes StoreError naming ``what``."""

    async def together() -> list[Any]:
        # every call runs to its end before the first error is raised: none is left writing
        results = await asyncio.gather(*calls, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results

    try:
        return sync(together())
    except (OSError, RuntimeError, ValueError, TypeError) as error:
        if isinstance(error, OSError) and (error.errno is not None or type(error) is not OSError):
            raise  # the storage's own error (refused, gone, full), not the data's
        # zarrs reports a failed checksum as an OSError without a number, a failed write with the
        # OS error in its message
        code = _OS_ERROR.search(str(error))
        number = int(code.group(1)) if code else errno.ENOSPC if disk_full(error) else None
        if number is not None:
            raise OSError(number, f"{os.strerror(number)} ({what}: {error})") from None
        raise StoreError(f"{what}: damaged or unreadable ({error})") from None


def request(array: zarr.Array, selection: Any) -> Coroutine:
    """A read of ``array[selection]``, for :func:`gather`."""
    return array.async_array.getitem(selection)


def request_object(store: Store, key: str) -> Coroutine:
    """A read of the whole object ``key`` of ``store`` (None where there is none), for :func:`gather`."""

    async def read() -> bytes | None:
        found = await store.get(key, default_buffer_prototype())
        return None if found is None else found.to_bytes()

    return read()


def request_entries(array: zarr.Array, indices: Sequence[int], length: int | None = None) -> Coroutine:
    """A read of whole entries ``indices`` of ``array``, in that order, as one (len(indices), ...)
    array (of a ragged array, the first ``length`` values along axis 1, at most one run), for
    :func:`gather`.

    One selection for the batch, so zarr hands the pipeline every chunk at once and zarrs
    fetches and decodes them together: a quarter faster than a call per entry, and zarr's
    own selection of scattered rows (``oindex``) would decode whole shards.
    """
    indexer = _Entries(array, indices, length)
    return array.async_array._get_selection(indexer, prototype=default_buffer_prototype())


class _Entries:
    """zarr's ``Indexer`` for whole entries: entry ``i`` is row ``i % K`` of chunk (or shard) ``i // K``."""

    drop_axes: tuple[int, ...] = ()

    def __init__(self, array: zarr.Array, indices: Sequence[int], length: int | None = None) -> None:
        tail = array.shape[1:] if length is None else (min(length, array.chunks[1]), *array.shape[2:])
        self.shape = (len(indices), *tail)
        self._rows = (array.shards or array.chunks)[0]
        self._indices = indices

    def __iter__(self):
        rest = tuple(slice(0, length) for length in self.shape[1:])
        tail = (0,) * len(rest)
        for position, index in enumerate(self._indices):
            chunk, row = divmod(index, self._rows)
            yield ChunkProjection(
                (chunk, *tail), (slice(row, row + 1), *rest), (slice(position, position + 1), *rest), False
            )


def chunk_prefix(name: str, block: int | None = None) -> str:
    """The folder of array ``name``'s chunks (of block ``block``'s: its shards), without a final slash."""
    return f"{name}/c" if block is None else f"{name}/c/{block}"


def shard_keys(name: str, array: zarr.Array, block: int, length: int) -> list[str]:
    """The keys, within the store, of block ``block``'s shards of array ``name`` that hold its
    entries' first ``length`` values along axis 1: one, or a ragged array's one per run."""
    runs = -(-length // array.chunks[1])
    return [f"{chunk_prefix(name, block)}/{run}" + "/0" * (array.ndim - 2) for run in range(runs)]


class ShardIndexes(WrapperStore):
    """A store that keeps every shard index read through it, for reading from object storage.

    zarr reads one inner chunk of a shard in two requests, one after the other: the shard's
    index (the last bytes of the object), then the chunk's byte range. Kept, the index costs
    its request once per shard and process, and a batch then costs one round trip, not two.
    The indexes are those of the store as it was when opened, as zarr keeps its metadata: a
    store rewritten since must be reopened."""

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
