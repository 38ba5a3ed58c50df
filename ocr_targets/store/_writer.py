"""Creating and updating a store: the job's client owns the layout, its tasks write whole blocks.

A run goes: :meth:`StoreWriter.open` (lock, check or create), :meth:`StoreWriter.state` (what
the store holds), :meth:`StoreWriter.arrange` (lay it out for the new file list), the tasks
(:meth:`Blocks.write`, each rewriting one block), :meth:`StoreWriter.mark_done` per finished
block, :meth:`StoreWriter.close`.

Crash safety: an entry is trusted only while its done flag is 1. ``arrange`` clears the flags
of every block it will rewrite before anything of it changes, and copies the old shards of
the blocks that entries are carried from into ``.staging/`` first, so a task (or Dask's
rerun of it) always reads carried entries from a copy nothing writes to. The client sets the
flags of a block only after its task has written all of it, so a shard that zarrs was
rewriting in place when its task was killed is never trusted; the flags themselves are
replaced whole. A killed run leaves cleared flags and a staging folder; the next run deletes
the folder and recomputes those entries.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import zarr
from zarr.api.asynchronous import create_array

from ..arrays import BINARY_MAPS
from ..choices import thresh_tolerance
from ..location import STORAGE_ERRORS, Location, storage_problem
from ._blocks import missing_objects, refusal, unreadable_objects
from ._errors import StoreError, Unowned, Unreadable
from ._files import FILENAMES, GENERATION, STAGING, Foreign, read_attributes, renew_generation
from ._layout import DONE_CHUNK, RAGGED_ARRAYS, SCHEMA_VERSION, ArraySpec, compressors, name_tags
from ._lock import LOCK, StoreLock, now
from ._rows import read_rows
from ._settings import StoreSettings
from ._zarr import PARTIAL, chunk_prefix, gather, open_arrays, open_group, request, shard_keys

logger = logging.getLogger(__name__)


class StoreWriter:
    """A store opened for writing by the job's client, locked until :meth:`close`."""

    def __init__(
        self,
        store: Location,
        lock: StoreLock,
        filenames: list[str],
        attributes: dict,
        group: zarr.Group,
    ) -> None:
        self.location = store
        self.lock = lock
        self.filenames = filenames  # the new file list, written by ``arrange`` with ...
        self.attributes = attributes  # ... the root attributes
        self.settings = StoreSettings.from_dict(attributes["settings"])
        self.block = self.settings.block
        self.group = group
        self.arrays = open_arrays(group, self.settings.layout)  # every array but done, at its length before ``arrange``
        # zarr's own pipeline: a local done chunk is then replaced by a rename, never seen half
        # written (zarrs truncates and rewrites a file in place), at 1 ms a block instead of 0.4
        self.done = group["done"]
        # (entries, why) for each part of the store found unreadable: its entries are recomputed
        self.unreadable: list[tuple[int, str]] = []

    @classmethod
    def open(
        cls,
        store: Location,
        filenames: Sequence[str],
        settings: StoreSettings,
        *,
        sources: dict[str, str],
        overwrite: bool,
        version: str,
        break_lock: bool = False,
    ) -> StoreWriter:
        """Open ``store`` for writing, locked; :meth:`arrange` then lays it out for ``filenames``."""
        if store.is_local and store.exists() and not store.is_dir():
            raise StoreError(f"{store}: exists and is not a directory; choose another --out")
        store.fs.invalidate_cache(store.path)  # s3fs keeps listings that zarr's own writes made stale
        children = _children(store) if store.is_dir() else []
        try:
            stored = read_attributes(store)
        except Foreign:  # ours only if it holds nothing but what a first run stopped early leaves
            if not _own(children, set(settings.layout)):
                raise
            stored = None
        else:
            if stored is None and not all(map(_leftover, children)):
                raise StoreError(f"{store}: exists, is not empty and is not a zarr store; choose another --out")
        if stored is not None and not overwrite:
            _check_compatible(store, stored, settings)
        if stored is not None and overwrite:
            unowned = _unowned(store)
            if unowned:
                raise Unowned(str(store), unowned)
        try:
            store.fs.makedirs(store.path, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{store}: cannot create the store ({error})") from None
        lock = StoreLock(store, break_lock)
        try:
            (store / STAGING).delete(recursive=True)  # what a killed run left half done
            fresh = stored is None or overwrite
            if stored is not None and overwrite:
                renew_generation(store)  # readers of the old store refuse their next read from now on
            for child in _children(store) if fresh else _killed_writes(store):
                if child != GENERATION:
                    (store / child).delete(recursive=True)
            group = open_group(store, "a")
            (_create_arrays if fresh else _check_arrays)(group, settings.layout, settings.block)
            attributes = {
                "schema_version": SCHEMA_VERSION,
                "library_version": version,
                "settings": settings.to_dict(),
                "geometry": {"size": settings.size, **settings.pipeline().geometry(settings.pad)},
                "binary_maps": list(BINARY_MAPS),
                "thresh_tolerance": thresh_tolerance(settings.thresh_dtype, settings.config),
                "sources": sources,
                "created": now() if fresh else stored["created"],
                "updated": now(),
                "images": len(filenames),
            }
            writer = cls(store, lock, list(filenames), attributes, group)
        except BaseException:
            lock.release()
            raise
        return writer

    @property
    def count(self) -> int:
        """Entries the store held before this run."""
        return self.done.shape[0]

    def state(self) -> tuple[np.ndarray, list[str]]:
        """Every held entry's done flag and content hash. Only the blocks with entries marked
        done are read: the objects of any other block may be half written, and are never
        trusted. A done block that cannot be read counts as not done (it is recomputed)."""
        flags = self._flags()
        hashes = self.arrays["content_hash"]
        digests = np.zeros((self.count, 32), dtype=np.uint8)
        done = [start for start in range(0, self.count, self.block) if flags[start : start + self.block].any()]
        parts = [slice(start, start + self.block) for start in done]
        try:
            values = gather([request(hashes, part) for part in parts], f"{self.location} content_hash")
        except StoreError:  # a block is damaged: read them one by one, to know which
            values = []
            for part in parts:
                try:
                    values.append(gather([request(hashes, part)], f"{self.location} content_hash")[0])
                except StoreError as error:
                    values.append(np.zeros((0, 32), dtype=np.uint8))
                    self.unreadable.append((int(np.count_nonzero(flags[part])), str(error)))
                    flags[part] = 0
        for part, value in zip(parts, values, strict=True):
            digests[part][: len(value)] = value
        return flags, [bytes(row).hex() for row in digests]

    def _flags(self) -> np.ndarray:
        try:
            return np.array(gather([request(self.done, slice(None))], f"{self.location} done flags")[0])
        except StoreError as error:  # damaged: nothing is trusted, everything is recomputed
            self.unreadable.append((self.count, str(error)))
            (self.location / chunk_prefix("done")).delete(recursive=True)
            return np.zeros(self.count, dtype=np.uint8)

    def held(self) -> int | None:
        """How many entries the store holds done now (as ``info`` counts them), None if the flags
        cannot be read."""
        try:
            return int(np.count_nonzero(gather([request(self.done, slice(None))], f"{self.location} done flags")[0]))
        except (StoreError, *STORAGE_ERRORS):
            return None

    def damage(self, index: int) -> str | None:
        """What is wrong with held entry ``index`` (an object missing, or one that fails its
        checksum), or None: the full check ``precompute --recheck`` makes of what it keeps. An
        object the storage refuses is no damage a recompute repairs: Unreadable names it."""
        missing = missing_objects(self.location, self.arrays, index, self.block)
        if missing:
            return f"{missing[0]}: object missing"
        try:
            read_rows(self.arrays, [index], f"{self.location} entry {index}")
        except StoreError as error:
            return str(error)
        except STORAGE_ERRORS as error:
            problems = unreadable_objects(self.location, self.arrays, index, self.block)
            raise Unreadable(
                str(self.location),
                f"entry {index}, which --recheck does not recompute but needs to read; fix that, then rerun",
                problems or [storage_problem(error, self.location)],
            ) from error
        return None

    def unrepaired(self, blocks: Iterable[int]) -> tuple[list[str], list[str]]:
        """The shard objects of kept ``blocks`` that are missing, and those the storage refuses
        (each with why; looked for on a local disk, where it costs a byte's read): damage that a
        plain rerun, which reads only the content hashes of what it keeps, leaves as it is. One
        listing of the store; the arrays of one shard per block (a ragged array's objects depend
        on its entries' words: ``--recheck`` and ``verify`` look at those)."""
        listed = set(self.location.fs.find(self.location.path))
        missing, refused = [], []
        fixed = {name: array for name, array in self.arrays.items() if name not in RAGGED_ARRAYS}
        for block in blocks:
            for name, array in fixed.items():
                found = self.location / shard_keys(name, array, block, 1)[0]
                if found.path not in listed:
                    missing.append(str(found))
                elif self.location.is_local and (problem := refusal(found)):
                    refused.append(problem)
        return missing, refused

    def arrange(self, rewrite: Iterable[int], sources: Iterable[int], invalid: Iterable[int]) -> None:
        """Lay the store out for its new file list: the old blocks in ``sources`` (entries are
        carried from them) are copied to ``.staging/``, the entries of the blocks in ``rewrite``
        and those in ``invalid`` are marked not done, the arrays take the new length (cut blocks
        are deleted), and the file list and root attributes are written."""
        count, block = len(self.filenames), self.block
        sources = sorted(set(sources))
        if sources:
            staging = self.location / STAGING
            for name in ["zarr.json", *(f"{array}/zarr.json" for array in self.arrays)]:
                (staging / name).write_bytes((self.location / name).read_bytes())
            for name in self.arrays:
                for source in sources:
                    shards = chunk_prefix(name, source)  # the block's shards, one per run
                    if (self.location / shards).exists():
                        (self.location / shards).copy_to(staging / shards)
        before = self._flags()
        kept = before != 0
        for start in {b * block for b in rewrite}:
            kept[start : start + block] = False
        kept[[index for index in invalid if index < len(kept)]] = False
        kept[count:] = False  # entries cut now must not come back as done if the store grows again
        # an entry kept in place holds the same content at the same index, under its name of now
        shared = min(count, len(kept))
        tags = np.zeros_like(before)
        tags[:shared] = np.where(kept[:shared], name_tags(self.filenames[:shared]), 0)
        names = json.dumps(self.filenames).encode()
        renamed = not (self.location / FILENAMES).exists() or (self.location / FILENAMES).read_bytes() != names
        changes = bool(rewrite) or renamed or count != self.count or not np.array_equal(tags, before)
        if changes:  # before anything changes, and once all is laid out (a reader may open in between)
            renew_generation(self.location)
        if not np.array_equal(tags, before):
            self.done[:] = tags
        if count != self.count:  # zarr deletes the shards it cuts
            resizes = [
                array.async_array.resize((count, *array.shape[1:])) for array in [*self.arrays.values(), self.done]
            ]
            gather(resizes, f"{self.location}: resizing the arrays")
        if renamed:
            (self.location / FILENAMES).write_bytes(names)
        self.group.update_attributes({"ocr_targets": self.attributes})
        if changes:
            renew_generation(self.location)

    def mark_done(self, start: int, flags: Sequence[bool]) -> None:
        """Mark done the entries ``start ..`` of a block its task has written (``flags``: which):
        each with the tag of its image's name."""
        tags = name_tags(self.filenames[start : start + len(flags)])
        self.done[start : start + len(flags)] = np.where(np.asarray(flags, dtype=bool), tags, 0)

    def close(self) -> None:
        """Release the lock. Staging copies that cannot be deleted now are left for the next run,
        which deletes them first."""
        try:
            (self.location / STAGING).delete(recursive=True)
        except STORAGE_ERRORS as error:
            logger.warning("%s: cannot delete the staging copies yet (%s)", self.location / STAGING, error)
        finally:
            self.lock.release()


def _create_arrays(group: zarr.Group, specs: dict[str, ArraySpec], block: int) -> None:
    """Create every array, empty (``arrange`` gives them their length), all at once."""
    calls = [
        create_array(
            group.store, name=name, shape=(0, *spec.tail), dtype=spec.dtype, chunks=spec.inner,
            shards=spec.shard(block), fill_value=0, compressors=compressors(name),
        )
        for name, spec in specs.items()
    ] + [
        create_array(
            group.store, name="done", shape=(0,), chunks=(DONE_CHUNK,), dtype="uint32", fill_value=0,
            compressors=compressors("done"),
        )
    ]  # fmt: skip
    gather(calls, f"{group.store}: creating the arrays")


def _check_arrays(group: zarr.Group, specs: dict[str, ArraySpec], block: int) -> None:
    """Refuse a store whose arrays are not laid out as ``specs`` say."""
    for name, spec in specs.items():
        array = group.get(name)
        if array is None or (array.shards, array.chunks, array.dtype) != (spec.shard(block), spec.inner, spec.dtype):
            raise StoreError(
                f"{group.store}: array {name} is missing or laid out otherwise than this schema; "
                "rerun with --overwrite to rebuild it"
            )


def _children(store: Location) -> list[str]:
    """The names directly under ``store`` but its lock."""
    if not store.exists():
        return []
    names = [entry.rstrip("/").rsplit("/", 1)[-1] for entry in store.fs.ls(store.path, detail=False)]
    return [name for name in names if name != LOCK]


def _own(children: list[str], arrays: set[str]) -> bool:
    """Whether ``children`` of a bare zarr group are what a first run leaves that stopped before
    it wrote the group's attributes: the arrays, the done flags, the file list, leftovers."""
    names = arrays | {"done", FILENAMES, GENERATION, "zarr.json"}
    return all(child in names or _leftover(child) for child in children)


def _leftover(child: str) -> bool:
    """Whether a store's child is what a write or a job cut short leaves: staging copies,
    temporary files, a lock's temporary copy."""
    return child == STAGING or child.endswith(PARTIAL) or child.startswith(f"{LOCK}.")


_CHUNK = re.compile(r"c(/\d+)*")  # an array's chunk folders and keys


def _unowned(store: Location) -> list[str]:
    """What under ``store`` no store wrote, which ``--overwrite`` must not delete: anything but
    the root's objects (metadata, file list, generation, lock), leftovers of killed writes, the
    staging copies, and arrays (a folder with a ``zarr.json``, holding only that and its chunks,
    of this layout or an older one). A folder of the user's is named, not what it holds."""
    root = store.path.rstrip("/") + "/"
    found = [path.removeprefix(root) for path in store.fs.find(store.path, withdirs=True) if path.startswith(root)]
    arrays = {path.split("/")[0] for path in found if path.count("/") == 1 and path.endswith("/zarr.json")}

    def owned(path: str) -> bool:
        top, _, rest = path.partition("/")
        if top in arrays:
            return rest in ("", "zarr.json") or bool(_CHUNK.fullmatch(rest)) or rest.endswith(PARTIAL)
        if rest:
            return top == STAGING
        return top in ("zarr.json", FILENAMES, GENERATION, LOCK) or _leftover(top)

    unowned = {path for path in found if path and not owned(path)}
    return sorted(path for path in unowned if path.rpartition("/")[0] not in unowned)  # a folder, not all it holds


def _killed_writes(store: Location) -> list[str]:
    """What local writes killed before their rename left: ``*.partial`` files beside the
    metadata (the root's, the arrays') and the done flags' chunks. Objects appear whole on
    object storage."""
    if not store.is_local:
        return []
    root = Path(store.path)
    patterns = (f"*{PARTIAL}", f"*/*{PARTIAL}", f"{chunk_prefix('done')}/*{PARTIAL}")
    return [str(path.relative_to(root)) for pattern in patterns for path in root.glob(pattern)]


def _check_compatible(store: Location, stored: dict, settings: StoreSettings) -> None:
    if stored.get("schema_version") != SCHEMA_VERSION:
        raise StoreError(
            f"{store}: made with store schema {stored.get('schema_version')}, this is {SCHEMA_VERSION}; "
            "rerun with --overwrite to rebuild it"
        )
    # A new algorithm version is no conflict: it is in every content hash, so the entries recompute.
    previous, asked = stored["settings"], settings.to_dict()
    different = {k: (previous.get(k), v) for k, v in asked.items() if k != "algorithm_version" and previous.get(k) != v}
    if different:
        detail = "; ".join(f"{k}: stored {old!r}, asked {new!r}" for k, (old, new) in different.items())
        raise StoreError(f"{store}: made with other settings ({detail}); rerun with --overwrite to recompute all")
