"""The store's arrays: opening them, writing a block, reading entries, all I/O of a call at once.

zarr-python with the ``zarrs`` codec pipeline (Rust: sharding, Zstd and the checksums
decoded in parallel) on a local store, and zarr-python's own pipeline on fsspec's (object
storage), which zarrs does not take. Every helper here gathers its reads
or writes into one event-loop call, so a batch's chunks are fetched concurrently (byte
ranges of the shards) and a call's overhead is paid once, not per chunk. zarr-python,
unlike TensorStore, survives the ``fork`` of a DataLoader's workers.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import threading
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.indexing import ChunkProjection
from zarr.core.sync import sync

from ..config import TargetConfig
from ..geometry import Letterbox
from ..location import Location
from ..maps import Targets
from ._errors import StoreError
from ._indexes import ShardIndexes
from ._layout import MAX_POINTS, MAX_POLYGONS, POLYGONS, RAGGED_ARRAYS, encode_thresh

ENGINE = {"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}
_OS_ERROR = re.compile(r"os error (\d+)")


def open_group(store: Location, mode: str = "r") -> zarr.Group:
    """The store's root group (``mode`` as zarr's: r, r+, a, w); opened to read from object
    storage, it keeps the shard indexes it reads (:class:`ShardIndexes`)."""
    opened = store.zarr_store(read_only=mode == "r")
    if mode == "r" and not store.is_local:
        opened = ShardIndexes(opened)
    return zarr.open_group(store=opened, mode=mode, zarr_format=3)


# zarrs decodes on rayon's global thread pool, whose threads a forked process does not have:
# there, a call that enters the pool waits forever. A process forked after this module was
# imported (a DataLoader worker, by default) decodes on the calling thread, one chunk after
# another, which never enters the pool; its parallelism is the other workers.
_IMPORTED_BY = os.getpid()


def open_arrays(group: zarr.Group, names: Iterable[str], threads: int | None = None) -> dict[str, zarr.Array]:
    """The arrays ``names`` of ``group``, each with the zarrs pipeline (chosen when an array opens),
    encoding and decoding on ``threads`` threads (default: one per core; one in a forked process)."""
    settings = {**ENGINE, "threading.max_workers": threads}
    if os.getpid() != _IMPORTED_BY:
        settings["threading.max_workers"] = 1
        settings["codec_pipeline.chunk_concurrent_minimum"] = settings["codec_pipeline.chunk_concurrent_maximum"] = 1
    with zarr.config.set(settings):
        try:
            return {name: group[name] for name in names}
        except KeyError as error:
            raise StoreError(f"{group.store}: array {error} is missing; rerun with --overwrite to rebuild") from None


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
        number = int(code.group(1)) if code else errno.ENOSPC if "No space left" in str(error) else None
        if number is not None:
            raise OSError(number, f"{os.strerror(number)} ({what}: {error})") from None
        raise StoreError(f"{what}: damaged or unreadable ({error})") from None


def read(array: zarr.Array, selection: Any) -> Coroutine:
    return array.async_array.getitem(selection)


def read_entries(array: zarr.Array, indices: Sequence[int], length: int | None = None) -> Coroutine:
    """Whole entries ``indices`` of ``array``, in that order, as one (len(indices), ...) array
    (of a ragged array, the first ``length`` values along axis 1, at most one run).

    One selection for the batch, so zarr hands the pipeline every chunk at once and zarrs
    fetches and decodes them together: a quarter faster than a call per entry, and zarr's
    own selection of scattered rows (``oindex``) would decode whole shards. zarr reads any
    object that follows its ``Indexer`` protocol through ``_get_selection``, which its
    public selections use too; zarr is pinned to 3.1.x for it.
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


def block_objects(name: str, array: zarr.Array, block: int, length: int) -> list[str]:
    """The keys, within the store, of block ``block``'s shards of array ``name`` that hold its
    entries' first ``length`` values along axis 1: one, or a ragged array's one per run."""
    runs = -(-length // array.chunks[1])
    return [f"{name}/c/{block}/{run}" + "/0" * (array.ndim - 2) for run in range(runs)]


@dataclass(frozen=True)
class Record:
    """What a task computed for one image."""

    content_hash: str
    image_digest: bytes
    file_stat: tuple[int, int]
    letterbox: Letterbox
    orientation: int
    targets: Targets
    words: list[np.ndarray]  # (N, 2) float32, target coordinates
    ignore: list[bool]
    dropped_points: int  # word points the resize dropped (later words shifted)
    image: np.ndarray | None  # (S, S, 3) uint8 with --with-images


def entry_row(record: Record, thresh_dtype: str, config: TargetConfig) -> dict[str, np.ndarray]:
    """One entry's values in every array but ``done``: fixed-shape rows, and the ragged ones
    (offsets, points, ignore flags) as long as the entry needs."""
    targets = record.targets
    row = {
        "binary_maps": np.stack([targets.prob_map.astype(np.uint8), targets.prob_mask, targets.thresh_mask]),
        "thresh_map": encode_thresh(targets.thresh_map, thresh_dtype, config),
        "matrices": np.stack([record.letterbox.matrix, record.letterbox.inverse_matrix]),
        "image_info": np.array(
            [
                *record.letterbox.original_size,
                record.orientation,
                len(targets.shrunk_polygons),
                len(record.words),
                record.dropped_points,
            ],
            dtype=np.int32,
        ),
        "content_hash": np.frombuffer(bytes.fromhex(record.content_hash), dtype=np.uint8),
        "image_digest": np.frombuffer(record.image_digest, dtype=np.uint8),
        "file_stat": np.array(record.file_stat, dtype=np.int64),
        **_ragged("shrunk", targets.shrunk_polygons, np.int32),
        **_ragged("word", record.words, np.float32),
        "word_ignore": np.array(record.ignore, dtype=np.uint8),
    }
    if record.image is not None:
        row["images"] = record.image
    return row


def _ragged(prefix: str, polygons: list[np.ndarray], dtype: type) -> dict[str, np.ndarray]:
    offsets = np.cumsum([0] + [len(p) for p in polygons]).astype(np.int32)
    if len(polygons) > MAX_POLYGONS or offsets[-1] > MAX_POINTS:
        raise ValueError(
            f"{len(polygons)} {prefix} polygons of {offsets[-1]} points exceed the store's capacity "
            f"({MAX_POLYGONS} polygons, {MAX_POINTS} points per image)"
        )
    points = [np.asarray(p).reshape(-1, 2) for p in polygons]
    coords = np.concatenate(points).astype(dtype) if points else np.zeros((0, 2), dtype=dtype)
    return {f"{prefix}_offsets": offsets, f"{prefix}_coords": coords}


def write_block(arrays: dict[str, zarr.Array], block: int, start: int, rows: Sequence[dict | None]) -> None:
    """Write the entries ``start ..`` of block ``block`` (None: an entry that failed, left zero) as
    one shard per array (a ragged array: per run its entries reach), then delete the block's
    objects beyond those runs, left by an earlier, longer entry. Each shard is written whole,
    over its old object, and never deleted first: a task run twice (Dask reruns the task of a
    worker it lost) rewrites the same bytes and leaves no moment without them."""
    store = next(iter(arrays.values())).store
    what = f"{store} block {block}"
    try:
        kept = _write_shards(arrays, block, start, rows, what)
    except StoreError:  # zarr merges into a shard that an unfinished write left damaged: it goes
        gather([_delete_others(store, f"{name}/c/{block}/", set()) for name in arrays], what)
        kept = _write_shards(arrays, block, start, rows, what)
    gather([_delete_others(store, f"{name}/c/{block}/", keys) for name, keys in kept.items()], what)


def _write_shards(
    arrays: dict[str, zarr.Array], block: int, start: int, rows: Sequence[dict | None], what: str
) -> dict[str, set[str]]:
    """Write block ``block``'s shards; return, per array, the keys of the objects written."""
    writes, kept = [], {}
    for name, array in arrays.items():
        run = array.chunks[1]  # ragged arrays: whole inner chunks only
        longest = max((len(row[name]) for row in rows if row is not None), default=0)
        length = min(-(-longest // run) * run, array.shape[1])
        kept[name] = set(block_objects(name, array, block, length))
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


def read_rows(arrays: dict[str, zarr.Array], indices: Sequence[int], what: object) -> list[dict[str, np.ndarray]]:
    """Entries ``indices``' values in every array of ``arrays``, as :func:`entry_row` makes them."""
    fixed = [name for name in arrays if name not in RAGGED_ARRAYS]
    values = dict(zip(fixed, gather([read_entries(arrays[name], indices) for name in fixed], what), strict=True))
    rows = [{name: values[name][position] for name in fixed} for position in range(len(indices))]
    counts = [[int(count) for count in row["image_info"][3:5]] for row in rows]
    offsets = iter(
        gather(
            [
                read(arrays[f"{prefix}_offsets"], (index, slice(0, count + 1)))
                for index, pair in zip(indices, counts, strict=True)
                for prefix, count in zip(POLYGONS, pair, strict=True)
            ],
            what,
        )
    )
    for row in rows:
        row["shrunk_offsets"], row["word_offsets"] = next(offsets), next(offsets)
    ragged = iter(
        gather(
            [
                call
                for index, row in zip(indices, rows, strict=True)
                for call in (
                    read(arrays["shrunk_coords"], (index, slice(0, int(row["shrunk_offsets"][-1])))),
                    read(arrays["word_coords"], (index, slice(0, int(row["word_offsets"][-1])))),
                    read(arrays["word_ignore"], (index, slice(0, len(row["word_offsets"]) - 1))),
                )
            ],
            what,
        )
    )
    for row in rows:
        row["shrunk_coords"], row["word_coords"], row["word_ignore"] = next(ragged), next(ragged), next(ragged)
    return rows
