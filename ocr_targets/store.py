"""The zarr store of precomputed targets: layout, writing (one chunk per image per array), reading.

Layout (zarr v3, ZstdCodec; N images, S the target side):

    prob_map, prob_mask, thresh_mask   (N, S, S) uint8            0/1, lossless
    thresh_map                         (N, S, S) float32 | float16 | uint8 (quantised, see THRESH_DTYPES)
    matrix, inverse_matrix             (N, 3, 3) float64          original <-> target coordinates
    original_size                      (N, 2) int32               (height, width) of the image file
    content_hash                       (N, 32) uint8              SHA-256, see ocr_targets.hashing
    shrunk_count                       (N,) int32                 number of shrunk polygons
    shrunk_offsets                     (N, P) int32               polygon k is coords[offsets[k]:offsets[k+1]]
    shrunk_coords                      (N, K, 2) int32            flat ragged points, padded per row
    done                               (N,) uint8                 1 once every array of the entry is written

Every array is chunked one image per chunk along its first axis, so parallel writers
never share a chunk. An entry is served only when ``done`` is 1, and ``done`` is the
last thing written, so a crash never exposes half an entry. Root attributes hold the
parameters, the geometry, the file names and the versions.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from .config import ALGORITHM_VERSION, TargetConfig
from .maps import Targets

SCHEMA_VERSION = 1
MAP_ARRAYS = ("prob_map", "thresh_map", "prob_mask", "thresh_mask")

# thresh_map dtype -> the largest error it adds to the threshold map (stated in --help and
# stored, so that verify knows what "matches" means). uint8 quantises [thresh_min, thresh_max]
# into 255 steps: half a step is 0.4 / 510 with the default parameters.
THRESH_DTYPES = ("float32", "float16", "uint8")


def thresh_tolerance(dtype: str, config: TargetConfig) -> float:
    """The largest absolute error storing the threshold map as ``dtype`` may add."""
    if dtype == "float32":
        return 1e-6
    if dtype == "float16":
        return float(np.finfo(np.float16).eps) * config.thresh_max / 2 + 1e-6  # half a float16 step below 1
    return (config.thresh_max - config.thresh_min) / 510 + 1e-6


class StoreError(RuntimeError):
    """A store that is missing, locked, of another version, or inconsistent."""


@dataclass(frozen=True)
class Entry:
    """One image's stored targets, decoded: the maps are float32 whatever the stored dtype."""

    index: int
    filename: str
    content_hash: str
    prob_map: np.ndarray
    thresh_map: np.ndarray
    prob_mask: np.ndarray
    thresh_mask: np.ndarray
    shrunk_polygons: list[np.ndarray]
    matrix: np.ndarray
    inverse_matrix: np.ndarray
    original_size: tuple[int, int]


def encode_thresh(thresh_map: np.ndarray, dtype: str, config: TargetConfig) -> np.ndarray:
    if dtype == "uint8":
        scaled = (thresh_map - config.thresh_min) * (255 / (config.thresh_max - config.thresh_min))
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return thresh_map.astype(dtype)


def decode_thresh(stored: np.ndarray, config: TargetConfig) -> np.ndarray:
    if stored.dtype == np.uint8:
        step = np.float32((config.thresh_max - config.thresh_min) / 255)
        return stored.astype(np.float32) * step + np.float32(config.thresh_min)
    return stored.astype(np.float32, copy=False)


class StoreLock:
    """An exclusive, non-blocking lock on the store directory (flock: released if the holder dies)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise StoreError(f"{path}: another job is writing this store; wait for it to finish") from None

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class StoreWriter:
    """Create or reconcile a store for a list of images, then write entries into it.

    The parent process owns the layout and the small per-image arrays; workers write
    the four maps of their own images through :func:`write_maps`.
    """

    def __init__(self, path: str | Path, group: zarr.Group) -> None:
        self.path = Path(path)
        self.group = group

    @classmethod
    def open(
        cls,
        path: str | Path,
        filenames: Sequence[str],
        *,
        config: TargetConfig,
        size: int,
        thresh_dtype: str,
        sources: dict[str, str],
        overwrite: bool,
        version: str,
    ) -> tuple[StoreWriter, StoreLock]:
        """Open ``path`` for writing, locked, laid out for ``filenames`` (in dataset order)."""
        path = Path(path)
        settings = {
            "config": config.to_dict(),
            "size": size,
            "algorithm_version": ALGORITHM_VERSION,
            "thresh_dtype": thresh_dtype,
        }
        if path.exists() and not (path / "zarr.json").exists():
            raise StoreError(f"{path}: exists and is not a zarr store; choose another --out")
        path.mkdir(parents=True, exist_ok=True)
        lock = StoreLock(path)
        try:
            group = zarr.open_group(path, mode="a", zarr_format=3)
            stored = group.attrs.get("ocr_targets")
            if stored is not None and not overwrite:
                if stored.get("schema_version") != SCHEMA_VERSION:
                    raise StoreError(
                        f"{path}: made with store schema {stored.get('schema_version')}, this is {SCHEMA_VERSION}; "
                        "rerun with --overwrite to rebuild it"
                    )
                different = {k: (stored["settings"].get(k), v) for k, v in settings.items() if stored["settings"].get(k) != v}
                if different:
                    detail = "; ".join(f"{k}: stored {old!r}, asked {new!r}" for k, (old, new) in different.items())
                    raise StoreError(f"{path}: made with other settings ({detail}); rerun with --overwrite to recompute all")
            if stored is None or overwrite:
                group = zarr.open_group(path, mode="w", zarr_format=3)
                stored = None
            writer = cls(path, group)
            writer._lay_out(len(filenames), size, thresh_dtype)
            writer._clear_partial_files()
            previous = stored["filenames"] if stored else []
            moved = [i for i, name in enumerate(filenames) if i >= len(previous) or previous[i] != name]
            if moved:
                writer.group["done"][moved] = 0  # an index now names another image: recompute it
            group.attrs["ocr_targets"] = {
                "schema_version": SCHEMA_VERSION,
                "library_version": version,
                "settings": settings,
                "geometry": {
                    "size": size,
                    "resize": "longest side to size, linear interpolation",
                    "pad": "bottom and right with zeros to size x size",
                    "polygons": "scaled by matrix, then truncated to int32 by the maps",
                },
                "thresh_tolerance": thresh_tolerance(thresh_dtype, config),
                "sources": sources,
                "created": stored["created"] if stored else _now(),
                "updated": _now(),
                "filenames": list(filenames),
            }
        except BaseException:
            lock.release()
            raise
        return writer, lock

    def _lay_out(self, count: int, size: int, thresh_dtype: str) -> None:
        """Create the arrays, or resize them to ``count`` images."""
        specs = {
            "prob_map": ((size, size), "uint8"),
            "thresh_map": ((size, size), thresh_dtype),
            "prob_mask": ((size, size), "uint8"),
            "thresh_mask": ((size, size), "uint8"),
            "matrix": ((3, 3), "float64"),
            "inverse_matrix": ((3, 3), "float64"),
            "original_size": ((2,), "int32"),
            "content_hash": ((32,), "uint8"),
            "shrunk_count": ((), "int32"),
            "shrunk_offsets": ((256,), "int32"),
            "shrunk_coords": ((4096, 2), "int32"),
            "done": ((), "uint8"),
        }
        for name, (tail, dtype) in specs.items():
            if name in self.group:
                array = self.group[name]
                if array.shape[0] != count:
                    array.resize((count, *array.shape[1:]))
            else:
                self.group.create_array(
                    name,
                    shape=(count, *tail),
                    chunks=(1, *tail),
                    dtype=dtype,
                    fill_value=0,
                    compressors=ZstdCodec(level=3),
                )

    def _clear_partial_files(self) -> None:
        """Temporary files of a write that a crash interrupted (zarr writes via ``*.partial`` + rename)."""
        for partial in self.path.rglob("*.partial"):
            partial.unlink(missing_ok=True)

    def done_and_hashes(self) -> tuple[np.ndarray, list[str]]:
        done = self.group["done"][:]
        hashes = [bytes(row).hex() for row in self.group["content_hash"][:]]
        return done, hashes

    def invalidate(self, indices: Sequence[int]) -> None:
        """Mark entries as not done before they are rewritten."""
        if len(indices):
            self.group["done"][list(indices)] = 0

    def finish_entry(
        self,
        index: int,
        content_hash: str,
        original_size: tuple[int, int],
        matrix: np.ndarray,
        shrunk_polygons: list[np.ndarray],
    ) -> None:
        """Write the small arrays of an entry whose maps are written, then mark it done."""
        g = self.group
        offsets = np.cumsum([0] + [len(p) for p in shrunk_polygons]).astype(np.int32)
        coords = np.concatenate(shrunk_polygons) if shrunk_polygons else np.zeros((0, 2), np.int32)
        _grow(g["shrunk_offsets"], 1, len(offsets))
        _grow(g["shrunk_coords"], 1, len(coords))
        g["shrunk_offsets"][index, : len(offsets)] = offsets
        g["shrunk_coords"][index, : len(coords)] = coords
        g["shrunk_count"][index] = len(shrunk_polygons)
        g["original_size"][index] = original_size
        g["matrix"][index] = matrix
        g["inverse_matrix"][index] = np.linalg.inv(matrix)
        g["content_hash"][index] = np.frombuffer(bytes.fromhex(content_hash), dtype=np.uint8)
        g["done"][index] = 1


def _grow(array: zarr.Array, axis: int, length: int) -> None:
    if array.shape[axis] < length:
        shape = list(array.shape)
        shape[axis] = length
        array.resize(tuple(shape))


def write_maps(
    path: str | Path, run_id: str, index: int, targets: Targets, thresh_dtype: str, config: TargetConfig
) -> None:
    """Write one image's four maps (a worker's part of an entry)."""
    group = _open_for_maps(str(path), run_id)
    group["prob_map"][index] = targets.prob_map.astype(np.uint8)
    group["thresh_map"][index] = encode_thresh(targets.thresh_map, thresh_dtype, config)
    group["prob_mask"][index] = targets.prob_mask
    group["thresh_mask"][index] = targets.thresh_mask


_OPEN_GROUPS: dict[tuple[int, str, str], zarr.Group] = {}


def _open_for_maps(path: str, run_id: str) -> zarr.Group:
    """One open group per worker process, store and run: opening reads every array's metadata."""
    key = (os.getpid(), path, run_id)
    if key not in _OPEN_GROUPS:
        _OPEN_GROUPS.clear()
        _OPEN_GROUPS[key] = zarr.open_group(path, mode="r+", zarr_format=3)
    return _OPEN_GROUPS[key]


class TargetStore:
    """A read-only store, by dataset index. Opened with :func:`open_store`.

    Cheap to pickle into DataLoader workers: it carries the path and the root
    attributes; each process opens the zarr arrays itself, on first read.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            root = json.loads((self.path / "zarr.json").read_text())
            self.attrs: dict = root["attributes"]["ocr_targets"]
        except FileNotFoundError:
            raise StoreError(f"{self.path}: no target store here; make one with `ocr-targets precompute`") from None
        except (KeyError, TypeError, json.JSONDecodeError):
            raise StoreError(f"{self.path}: a zarr store, but not one written by ocr-targets") from None
        if self.attrs.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema {self.attrs.get('schema_version')}, this library reads {SCHEMA_VERSION}; "
                "rebuild it with `ocr-targets precompute --overwrite`"
            )
        self.filenames: list[str] = list(self.attrs["filenames"])
        self.config = TargetConfig(**self.attrs["settings"]["config"])
        self.size: int = self.attrs["settings"]["size"]
        self._index = {name: index for index, name in enumerate(self.filenames)}
        self._group: zarr.Group | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.filenames)

    def __repr__(self) -> str:
        return f"TargetStore({str(self.path)!r}, {len(self)} images, size {self.size})"

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_group": None, "_pid": -1}

    def index_of(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"{name!r} is not in the store {self.path}") from None

    @property
    def group(self) -> zarr.Group:
        if self._pid != os.getpid():
            self._group = zarr.open_group(self.path, mode="r", zarr_format=3)
            self._pid = os.getpid()
        return self._group

    def _check(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for the store {self.path} of {len(self)} images")
        return index % len(self)

    def read_maps(self, index: int) -> dict[str, np.ndarray]:
        """The four maps of entry ``index``, decoded to float32 / uint8 as the fast path makes them."""
        index = self._check(index)
        group = self.group
        if not group["done"][index]:
            raise StoreError(
                f"{self.path}: entry {index} ({self.filenames[index]}) was never completed "
                "(its image failed, or a run was interrupted); rerun `ocr-targets precompute`"
            )
        return {
            "prob_map": group["prob_map"][index].astype(np.float32),
            "thresh_map": decode_thresh(group["thresh_map"][index], self.config),
            "prob_mask": group["prob_mask"][index],
            "thresh_mask": group["thresh_mask"][index],
        }

    def __getitem__(self, index: int) -> Entry:
        maps = self.read_maps(index)
        index = self._check(index)
        group = self.group
        count = int(group["shrunk_count"][index])
        offsets = group["shrunk_offsets"][index, : count + 1]
        coords = group["shrunk_coords"][index, : offsets[-1]] if count else np.zeros((0, 2), np.int32)
        return Entry(
            index=index,
            filename=self.filenames[index],
            content_hash=bytes(group["content_hash"][index]).hex(),
            shrunk_polygons=[coords[offsets[k] : offsets[k + 1]] for k in range(count)],
            matrix=group["matrix"][index],
            inverse_matrix=group["inverse_matrix"][index],
            original_size=tuple(int(v) for v in group["original_size"][index]),
            **maps,
        )


def open_store(path: str | Path) -> TargetStore:
    """Open a store written by ``ocr-targets precompute``, read-only."""
    return TargetStore(path)
