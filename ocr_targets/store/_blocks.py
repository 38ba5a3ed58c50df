"""Writing a block, the unit of a job's task: one shard per array, written whole.

A task opens :class:`Blocks` on the store (and on the staging copies of the blocks it
carries entries from, which nothing writes to while it runs), reads the carried entries,
computes the others and writes the block.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import zarr

from ..location import STORAGE_ERRORS, Location, storage_problem
from ._errors import StoreError
from ._files import STAGING
from ._layout import MAX_POINTS, POLYGONS, RAGGED_ARRAYS
from ._rows import read_rows
from ._settings import StoreSettings
from ._zarr import chunk_prefix, gather, open_arrays, open_group, request, shard_keys


class Blocks:
    """A store opened by a job's task, to write blocks, compressing on ``threads`` threads:
    the job's parallelism is its processes (a thread more per process made ``--jobs 2``
    slower); a job computing in one process compresses on the cores it leaves idle."""

    def __init__(self, store: Location, settings: StoreSettings, threads: int = 1) -> None:
        self.location = store
        names = settings.layout
        self.arrays = open_arrays(open_group(store, "r+"), names, threads=threads)
        staging = store / STAGING
        exists = (staging / "zarr.json").exists()
        self._staging = open_arrays(open_group(staging), names, threads=1) if exists else None

    def carried(self, sources: Sequence[int]) -> list[dict[str, np.ndarray]]:
        """The rows of old entries ``sources``, from the staging copies; StoreError or OSError
        if the copies cannot be read."""
        if not sources:
            return []
        if self._staging is None:
            raise StoreError(f"{self.location / STAGING}: the staging copies are gone")
        return read_rows(self._staging, sources, f"{self.location} staged block")

    def write(self, block: int, start: int, rows: Sequence[dict | None]) -> None:
        """Write the entries ``start ..`` of block ``block`` (None: an entry that failed, left
        zero) as one shard per array (a ragged array: per run its entries reach), then delete the
        block's objects beyond those runs, left by an earlier, longer entry. Each shard is written
        whole, over its old object, and never deleted first: a task run twice (Dask reruns the task
        of a worker it lost) rewrites the same bytes and leaves no moment without them."""
        store = next(iter(self.arrays.values())).store
        what = f"{self.location} block {block}"
        try:
            kept = _write_shards(self.arrays, block, start, rows, what)
        except StoreError:  # zarr merges into a shard that an unfinished write left damaged: it goes
            gather([_delete_others(store, chunk_prefix(name, block) + "/", set()) for name in self.arrays], what)
            kept = _write_shards(self.arrays, block, start, rows, what)
        gather([_delete_others(store, chunk_prefix(name, block) + "/", keys) for name, keys in kept.items()], what)


def _write_shards(
    arrays: dict[str, zarr.Array], block: int, start: int, rows: Sequence[dict | None], what: str
) -> dict[str, set[str]]:
    """Write block ``block``'s shards; return, per array, the keys of the objects written."""
    writes, kept = [], {}
    for name, array in arrays.items():
        run = array.chunks[1]  # ragged arrays: whole inner chunks only
        longest = max((len(row[name]) for row in rows if row is not None), default=0)
        length = min(-(-longest // run) * run, array.shape[1])
        kept[name] = set(shard_keys(name, array, block, length))
        if not length:
            continue  # nothing but fill values: no object at all
        values = _block_buffer(name, (len(rows), length, *array.shape[2:]), array.dtype)
        for position, row in enumerate(rows):  # each byte written once
            filled = 0 if row is None else len(row[name])
            if filled:
                values[position, :filled] = row[name]
            values[position, filled:] = 0
        writes.append(array.async_array.setitem((slice(start, start + len(rows)), slice(0, length)), values))
    gather(writes, what)
    return kept


async def _delete_others(store: zarr.abc.store.Store, prefix: str, kept: set[str]) -> None:
    """Delete every object under ``prefix`` but ``kept``."""
    await asyncio.gather(*[store.delete(key) async for key in store.list_prefix(prefix) if key not in kept])


_buffers = threading.local()  # per thread: a Dask worker may run tasks on several


def _block_buffer(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Memory for a block's values of array ``name``, the same from block to block. A block of
    64 threshold maps is 105 MB; a new one each block, even with the allocator tuned
    (:mod:`ocr_targets.allocator`), took `--jobs 1` from 128 to 98 images/s: fresh pages."""
    held = vars(_buffers)
    if name not in held or held[name].shape != shape or held[name].dtype != dtype:
        held[name] = np.empty(shape, dtype)
    return held[name]


def missing_objects(store: Location, arrays: dict[str, zarr.Array], index: int, block: int) -> list[str]:
    """The shard objects that entry ``index`` (of a block of ``block``) needs but that are not
    there: read, they would be zeros."""
    return [str(found) for found in entry_objects(store, arrays, index, block) if not found.exists()]


def unreadable_objects(store: Location, arrays: dict[str, zarr.Array], index: int, block: int) -> list[str]:
    """The shard objects of entry ``index`` that are there but that the storage will not give,
    each said with why (permissions on a local disk, credentials on object storage): what a
    failed read of the entry names."""
    return [problem for found in entry_objects(store, arrays, index, block) if (problem := refusal(found))]


def refusal(found: Location) -> str | None:
    """Why the storage will not give object ``found`` (it and the cause, in words), or None."""
    try:
        found.fs.cat_file(found.path, start=0, end=1)
    except FileNotFoundError:
        return None  # missing_objects names it
    except STORAGE_ERRORS as error:
        if isinstance(error, OSError) and error.filename:  # said once, as the object's URL
            error = type(error)(error.errno, error.strerror)
        return f"{found}: {storage_problem(error, found)}"
    return None


def entry_objects(store: Location, arrays: dict[str, zarr.Array], index: int, block: int) -> list[Location]:
    """The shard objects that entry ``index`` (of a block of ``block``) needs: the ragged arrays'
    as far as its polygons and points reach; not ``word_ignore``'s, of which a run of flags all 0
    is no object at all."""
    what = f"{store} entry {index}"
    # how far along axis 1 the entry reaches in each array: 1 (one shard) in the fixed ones
    lengths = dict.fromkeys((name for name in arrays if name not in RAGGED_ARRAYS), 1)
    try:
        counts = [int(count) for count in gather([request(arrays["image_info"], index)], what)[0][3:5]]
        ends = gather(
            [request(arrays[f"{p}_offsets"], (index, c)) for p, c in zip(POLYGONS, counts, strict=True)], what
        )
    except (StoreError, IndexError, *STORAGE_ERRORS):
        counts, ends = [0, 0], [0, 0]  # unreadable or nonsense, which the entry's read reports
    for prefix, count, points in zip(POLYGONS, counts, ends, strict=True):
        if count:
            lengths[f"{prefix}_offsets"], lengths[f"{prefix}_coords"] = count + 1, min(max(int(points), 1), MAX_POINTS)
    shards = [shard_keys(name, arrays[name], index // block, length) for name, length in lengths.items()]
    return [store / key for keys in shards for key in keys]
