"""The zarr store of precomputed targets: its layout, writing it, and reading its chunk files.

Layout (zarr v3; every array chunked one image per chunk along its first axis, so
parallel writers never share a chunk; Zstd with a checksum, so a corrupted chunk
fails to decode instead of decoding to garbage). N images, S the target side:

    binary_maps      (N, 3, S, S) uint8   prob_map, prob_mask, thresh_mask (0/1, lossless)
    thresh_map       (N, S, S)    float32 | float16 | uint8 (see THRESH_DTYPES)
    matrices         (N, 2, 3, 3) float64 forward (original -> target) and inverse matrix
    image_info       (N, 5)       int32   original height, width, EXIF orientation, shrunk polygons, words
    content_hash     (N, 32)      uint8   SHA-256 of image bytes, words, parameters, algorithm
    image_digest     (N, 32)      uint8   SHA-256 of the image file's bytes
    file_stat        (N, 2)       int64   the image file's size and mtime (ns) when it was read, so
                                          a check can skip hashing files that have not changed
    shrunk_offsets   (N, P)       int32   polygon k is shrunk_coords[i, offsets[k]:offsets[k + 1]]
    shrunk_coords    (N, K, 2)    int32   the shrunk polygons' points, flat (ragged per image)
    word_offsets     (N, P)       int32   the words as the dataset hands them to the collate
    word_coords      (N, K, 2)    float32   (target coordinates, after the word filters), flat
    word_ignore      (N, P)       uint8   1 for a word ignored in the DB masks
    images           (N, S, S, 3) uint8   only with --with-images: the image as the validation
                                          transform leaves it, before Normalize
    done             (N,)         uint8   1 once every other array of the entry is written

``done`` is written last, by the one process that owns the layout, so a crash never
exposes half an entry. The root attribute ``ocr_targets`` records the settings, the
geometry, the file names (dataset order), the sources and the versions.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorstore as ts
import zarr
from numcodecs import Zstd
from zarr.codecs import ZstdCodec

from .config import ALGORITHM_VERSION, TargetConfig
from .geometry import Letterbox
from .maps import Targets

SCHEMA_VERSION = 2
BINARY_MAPS = ("prob_map", "prob_mask", "thresh_mask")  # the channels of binary_maps
MAP_DTYPES = {"prob_map": np.float32, "thresh_map": np.float32, "prob_mask": np.uint8, "thresh_mask": np.uint8}
THRESH_DTYPES = ("float32", "float16", "uint8")
_LEFTOVERS = (".partial", ".__lock")  # zarr-python's and TensorStore's files of a write under way
_STAGING = ".moving"  # where arrange() keeps the chunks of moved entries while it works
LEGACY_PAD = "top-left"  # the geometry of stores made before the pad was recorded
# Polygons (shrunk, or words) per image at most 65 * 1024 - 1, points 512 * 8192: room that costs nothing,
# since chunks that are never written take no space.
_OFFSET_CHUNK, _COORD_CHUNK = 1024, 8192
MAX_POLYGONS = _OFFSET_CHUNK * 65 - 1
MAX_POINTS = _COORD_CHUNK * 512
_ZSTD_LEVEL = 3


def _layout(size: int, thresh_dtype: str, with_images: bool) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], str]]:
    """name -> (shape after N, chunk shape after 1, dtype)."""
    offsets = ((_OFFSET_CHUNK * 65,), (_OFFSET_CHUNK,))
    coords = ((_COORD_CHUNK * 512, 2), (_COORD_CHUNK, 2))
    layout = {
        "binary_maps": ((3, size, size), (3, size, size), "uint8"),
        "thresh_map": ((size, size), (size, size), thresh_dtype),
        "matrices": ((2, 3, 3), (2, 3, 3), "float64"),
        "image_info": ((5,), (5,), "int32"),
        "content_hash": ((32,), (32,), "uint8"),
        "image_digest": ((32,), (32,), "uint8"),
        "file_stat": ((2,), (2,), "int64"),
        "shrunk_offsets": (*offsets, "int32"),
        "shrunk_coords": (*coords, "int32"),
        "word_offsets": (*offsets, "int32"),
        "word_coords": (*coords, "float32"),
        "word_ignore": (*offsets, "uint8"),
        "done": ((), (), "uint8"),
    }
    if with_images:
        layout["images"] = ((size, size, 3), (size, size, 3), "uint8")
    return layout


def thresh_tolerance(dtype: str, config: TargetConfig) -> float:
    """The largest absolute error that storing the threshold map as ``dtype`` adds."""
    if dtype == "float32":
        return 1e-6
    if dtype == "float16":
        return float(np.finfo(np.float16).eps) * config.thresh_max / 2 + 1e-6  # half a float16 step below 1
    return (config.thresh_max - config.thresh_min) / 510 + 1e-6  # half of one of 255 steps


def encode_thresh(thresh_map: np.ndarray, dtype: str, config: TargetConfig) -> np.ndarray:
    if dtype == "uint8":
        scaled = (thresh_map - config.thresh_min) * (255 / (config.thresh_max - config.thresh_min))
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return thresh_map.astype(dtype)


def decode_thresh(stored: np.ndarray, config: TargetConfig) -> np.ndarray:
    if stored.dtype == np.uint8:
        step = np.float32((config.thresh_max - config.thresh_min) / 255)
        return stored.astype(np.float32) * step + np.float32(config.thresh_min)
    return stored.astype(np.float32)


class StoreError(RuntimeError):
    """A store that is missing, locked, of another version or settings, or damaged."""


class StoreLock:
    """An flock on the store directory: exclusive for a writer, shared for readers.

    The kernel drops it when its holder dies, so a killed job never leaves a stale lock.
    """

    _fd = -1

    def __init__(self, path: Path, shared: bool = False) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            self._fd = fd
        except BlockingIOError:
            os.close(fd)
            if shared:
                raise StoreError(f"{path}: a precompute job is writing this store; wait for it to finish") from None
            raise StoreError(f"{path}: another job is writing or reading this store; wait for it to finish") from None

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = -1

    __del__ = release


@dataclass(frozen=True)
class Record:
    """What a worker writes for one image, besides ``done``."""

    content_hash: str
    image_digest: bytes
    file_stat: tuple[int, int]
    letterbox: Letterbox
    orientation: int
    targets: Targets
    words: list[np.ndarray]  # (N, 2) float32, target coordinates
    ignore: list[bool]
    image: np.ndarray | None  # (S, S, 3) uint8 with --with-images


def _files(root: Path, suffix: str = "") -> list[Path]:
    """Every file below ``root`` ending in ``suffix`` (os.walk: much quicker than Path.rglob)."""
    return [Path(folder, name) for folder, _, names in os.walk(root) for name in names if name.endswith(suffix)]


def disk_usage(root: Path) -> int:
    return sum(path.stat().st_size for path in _files(root))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class StoreWriter:
    """Create or reconcile a store for a list of images; the parent process owns it.

    Workers write their entries with :func:`write_entry`; the parent marks them done.
    """

    def __init__(self, path: Path, group: zarr.Group, lock: StoreLock, attributes: dict) -> None:
        self.path = path
        self.group = group
        self.lock = lock
        self.attributes = attributes  # the root attributes, written by ``arrange``
        self._readers: dict[str, ChunkReader] | None = None  # for ``damage``
        self._done: ts.TensorStore | None = None  # for ``mark_done``

    @classmethod
    def open(
        cls,
        path: str | Path,
        filenames: Sequence[str],
        *,
        config: TargetConfig,
        size: int,
        pad: str,
        thresh_dtype: str,
        with_images: bool,
        sources: dict[str, str],
        overwrite: bool,
        version: str,
    ) -> StoreWriter:
        """Open ``path`` for writing, locked; :meth:`arrange` then lays it out for ``filenames``."""
        path = Path(path)
        settings = {
            "config": config.to_dict(),
            "size": size,
            "pad": pad,
            "algorithm_version": ALGORITHM_VERSION,
            "thresh_dtype": thresh_dtype,
            "with_images": with_images,
        }
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path}: exists and is not a directory; choose another --out")
        if path.exists() and not (path / "zarr.json").exists() and any(path.iterdir()):
            raise StoreError(f"{path}: exists, is not empty and is not a zarr store; choose another --out")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{path}: cannot create the store ({error.strerror})") from None
        lock = StoreLock(path)
        try:
            group = zarr.open_group(path, mode="a", zarr_format=3)
            stored = group.attrs.get("ocr_targets")
            if stored is not None and not overwrite:
                _check_compatible(path, stored, settings)
            if stored is None or overwrite:
                group = zarr.open_group(path, mode="w", zarr_format=3)
                stored = None
            for leftover in _files(path):  # what a killed writer leaves beside the chunks
                if leftover.name.endswith(_LEFTOVERS) or ".__tmp_" in leftover.name:
                    leftover.unlink(missing_ok=True)
            shutil.rmtree(path / _STAGING, ignore_errors=True)  # moves a killed run left half done
            attributes = {
                "schema_version": SCHEMA_VERSION,
                "library_version": version,
                "settings": settings,
                "geometry": {
                    "size": size,
                    "resize": "longest side to size, linear interpolation, sides rounded",
                    "pad": f"zeros to size x size, {'centered' if pad == 'center' else 'at the bottom and right'}",
                    "polygons": "rounded to int32, EXIF words made upright, clamped into the image, "
                    "moved by the forward matrix, float32; words that vanish dropped",
                },
                "binary_maps": list(BINARY_MAPS),
                "thresh_tolerance": thresh_tolerance(thresh_dtype, config),
                "sources": sources,
                "created": stored["created"] if stored else _now(),
                "updated": _now(),
                "filenames": list(filenames),
            }
            writer = cls(path, group, lock, attributes)
            writer._lay_out(len(filenames), size, thresh_dtype, with_images)
        except BaseException:
            lock.release()
            raise
        return writer

    def _lay_out(self, count: int, size: int, thresh_dtype: str, with_images: bool) -> None:
        """Create the arrays for ``count`` images, or check the existing ones (``arrange`` resizes them)."""
        layout = _layout(size, thresh_dtype, with_images)
        unknown = sorted(set(self.group.array_keys()) - set(layout))
        if unknown:
            raise StoreError(
                f"{self.path}: holds arrays this schema does not know ({', '.join(unknown)}); "
                "rerun with --overwrite to rebuild it"
            )
        for name, (tail, chunk_tail, dtype) in layout.items():
            if name in self.group:
                array = self.group[name]
                if array.shape[1:] != tail or array.chunks != (1, *chunk_tail) or array.dtype != np.dtype(dtype):
                    raise StoreError(
                        f"{self.path}: array {name} is laid out otherwise than this schema; "
                        "rerun with --overwrite to rebuild it"
                    )
            else:
                self.group.create_array(
                    name,
                    shape=(count, *tail),
                    chunks=(1, *chunk_tail),
                    dtype=dtype,
                    fill_value=0,
                    compressors=ZstdCodec(level=_ZSTD_LEVEL, checksum=True),
                )

    def arrange(self, moves: dict[int, int], stale: Sequence[int]) -> None:
        """Lay the store out for its new file list: every entry in ``moves`` (new index -> old
        index) takes the old entry's chunks, ``stale`` entries are marked not done, the arrays
        take the new length, and the root attributes are written.

        Crash-safe: the moved chunks are first hard-linked aside (so resizing or overwriting
        an old index cannot lose them), a destination is marked not done before it changes,
        and done again only once every one of its chunks is in place.
        """
        count = len(self.attributes["filenames"])
        staging = self.path / _STAGING
        every = dict(self.group.arrays())  # listed before staging adds a folder to the store's tree
        arrays = [name for name in every if name != "done"]
        for new, old in moves.items():
            for name in arrays:
                source = self.path / name / "c" / str(old)
                if source.exists():
                    shutil.copytree(source, staging / str(new) / name, copy_function=_link_or_copy)
        old_count = self.group["done"].shape[0]
        self.invalidate([index for index in [*moves, *stale] if index < old_count])
        for array in every.values():
            if array.shape[0] != count:
                array.resize((count, *array.shape[1:]))
        for new in moves:
            for name in arrays:
                target = self.path / name / "c" / str(new)
                shutil.rmtree(target, ignore_errors=True)
                if (staging / str(new) / name).exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging / str(new) / name, target)
            self.mark_done(new)
        shutil.rmtree(staging, ignore_errors=True)
        self.group.attrs["ocr_targets"] = self.attributes

    def done_and_hashes(self) -> tuple[np.ndarray, list[str]]:
        """Every entry's done flag and content hash (read directly: a zarr call per chunk is slow).
        An entry whose flag or hash chunk is damaged counts as not done: it is recomputed."""
        done, hashes = ChunkReader(self.path, "done"), ChunkReader(self.path, "content_hash")
        flags, digests = np.zeros(done.count(), dtype=np.uint8), [""] * done.count()
        for index in range(done.count()):
            try:
                flags[index], digests[index] = done.read(index), bytes(hashes.read(index)).hex()
            except StoreError:
                flags[index] = 0
        return flags, digests

    def damage(self, index: int) -> str | None:
        """What is wrong with the chunks of entry ``index`` (one missing, or one that fails its
        checksum), or None: the full check ``precompute --recheck`` makes of the entries it keeps."""
        if self._readers is None:
            self._readers = {name: ChunkReader(self.path, name) for name in self.group.array_keys()}
        try:
            missing = missing_chunks(self._readers.__getitem__, index)
        except StoreError as error:
            return str(error)
        if missing:
            return f"{missing[0]}: chunk missing"
        for reader in self._readers.values():
            folder = reader.folder / "c" / str(index)
            chunks = (
                [folder]
                if folder.is_file()
                else sorted(p for p in folder.rglob("*") if p.is_file() and p.name.isdigit())
            )
            for path in chunks:
                try:
                    reader.zstd.decode(path.read_bytes())
                except (RuntimeError, ValueError, OSError) as error:
                    return f"{path}: damaged chunk ({error})"
        return None

    def invalidate(self, indices: Sequence[int]) -> None:
        """Mark entries as not done before they are rewritten (or because they failed): a flag's
        chunk that is absent reads as 0, so deleting it is enough, and needs no read of it."""
        done = ChunkReader(self.path, "done")
        for index in indices:
            done.path(index).unlink(missing_ok=True)

    def mark_done(self, index: int) -> None:
        if self._done is None:  # opened once the arrays have their length for this run
            self._done = open_arrays(self.path, ["done"])["done"]
        _settle([self._done[index].write(np.uint8(1))])

    def close(self) -> None:
        self.lock.release()


# Arrays whose chunk of a done entry is never all fill value, so always on disk.
_ALWAYS_WRITTEN = (
    "binary_maps", "thresh_map", "matrices", "image_info", "content_hash", "image_digest", "file_stat", "done"
)  # fmt: skip


def missing_chunks(reader: Callable[[str], ChunkReader], index: int) -> list[Path]:
    """Chunk files that done entry ``index`` must have but that are not on disk (zarr would read
    them as zeros); ``reader(name)`` gives the ChunkReader of array ``name``."""
    expected = [reader(name).path(index) for name in _ALWAYS_WRITTEN]
    info = reader("image_info").read(index)
    for prefix, count in (("shrunk", int(info[3])), ("word", int(info[4]))):
        if count:
            points = int(reader(f"{prefix}_offsets").read_prefix(index, count + 1)[-1])
            expected += reader(f"{prefix}_offsets").paths(index, count + 1)
            expected += reader(f"{prefix}_coords").paths(index, points)
    return [path for path in expected if not path.exists()]


def _link_or_copy(source: str, target: str) -> None:
    """A hard link (instant, and immune to the source being replaced later), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def done_flags(done: ChunkReader) -> np.ndarray:
    """Every entry's done flag, as uint8."""
    return np.array([done.read(index) for index in range(done.count())], dtype=np.uint8)


def content_hashes(hashes: ChunkReader) -> list[str]:
    """Every entry's content hash, as hex."""
    return [bytes(hashes.read(index)).hex() for index in range(hashes.count())]


def _check_compatible(path: Path, stored: dict, settings: dict) -> None:
    if stored.get("schema_version") != SCHEMA_VERSION:
        raise StoreError(
            f"{path}: made with store schema {stored.get('schema_version')}, this is {SCHEMA_VERSION}; "
            "rerun with --overwrite to rebuild it"
        )
    # A new algorithm version is no conflict: it is in every content hash, so the entries recompute.
    previous = {"pad": LEGACY_PAD, "with_images": False, **stored["settings"]}
    different = {
        k: (previous.get(k), v) for k, v in settings.items() if k != "algorithm_version" and previous.get(k) != v
    }
    if different:
        detail = "; ".join(f"{k}: stored {old!r}, asked {new!r}" for k, (old, new) in different.items())
        raise StoreError(f"{path}: made with other settings ({detail}); rerun with --overwrite to recompute all")


_OPEN_ARRAYS: dict[tuple[int, str, str], dict[str, ts.TensorStore]] = {}
# No fsync per chunk (as zarr-python): a chunk file appears whole or not at all (rename), and
# an entry is only trusted once its done flag is written, after all of its chunks. One thread
# per process: the job's parallelism is its processes (more threads made --jobs 2 slower).
_TS_CONTEXT = {
    "file_io_sync": False,
    "cache_pool": {"total_bytes_limit": 0},
    "data_copy_concurrency": {"limit": 1},
    "file_io_concurrency": {"limit": 1},
}


def _settle(writes: list[ts.WriteFutures]) -> None:
    """Wait for TensorStore writes. It reports I/O errors as ValueError naming the OS error code;
    they become OSError again (a full disk is ENOSPC), which is what the job acts on."""
    try:
        for write in writes:
            write.result()
    except ValueError as error:
        code = re.search(r"os_error_code='(\d+)'", str(error))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))) + f" ({error})") from None


def open_arrays(path: Path, names: Sequence[str]) -> dict[str, ts.TensorStore]:
    """TensorStore handles on arrays of the store: the engine that writes the chunks (much quicker
    than zarr-python's per-call path here), in the same zarr v3 format."""
    context = ts.Context(_TS_CONTEXT)
    opening = {
        name: ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / name)}}, context=context)
        for name in names
    }
    return {name: future.result() for name, future in opening.items()}


def _whole_chunks(index: int, values: np.ndarray, chunk: int) -> tuple[tuple[int, slice], np.ndarray]:
    """``values`` zero-padded to whole chunks of image ``index``: no chunk is read back and
    merged, and nothing of an earlier, longer entry survives in its last chunk."""
    padded = np.zeros((-(-len(values) // chunk) * chunk, *values.shape[1:]), dtype=values.dtype)
    padded[: len(values)] = values
    return (index, slice(0, len(padded))), padded


def write_entry(path: Path, run_id: str, index: int, record: Record, thresh_dtype: str, config: TargetConfig) -> None:
    """Write every array of one entry but ``done`` (a worker's part)."""
    targets = record.targets
    values = {
        "binary_maps": (index, np.stack([targets.prob_map.astype(np.uint8), targets.prob_mask, targets.thresh_mask])),
        "thresh_map": (index, encode_thresh(targets.thresh_map, thresh_dtype, config)),
        "matrices": (index, np.stack([record.letterbox.matrix, record.letterbox.inverse_matrix])),
        "image_info": (
            index,
            np.array(
                [*record.letterbox.original_size, record.orientation, len(targets.shrunk_polygons), len(record.words)],
                dtype=np.int32,
            ),
        ),
        "content_hash": (index, np.frombuffer(bytes.fromhex(record.content_hash), dtype=np.uint8)),
        "image_digest": (index, np.frombuffer(record.image_digest, dtype=np.uint8)),
        "file_stat": (index, np.array(record.file_stat, dtype=np.int64)),
        **_ragged(index, "shrunk", targets.shrunk_polygons, np.int32),
        **_ragged(index, "word", record.words, np.float32),
        "word_ignore": _whole_chunks(index, np.array(record.ignore, dtype=np.uint8), _OFFSET_CHUNK),
    }
    if record.image is not None:
        values["images"] = (index, record.image)
    key = (os.getpid(), str(path), run_id)
    if key not in _OPEN_ARRAYS:  # opening reads every array's metadata: once per worker and run
        _OPEN_ARRAYS.clear()
        _OPEN_ARRAYS[key] = {}
    arrays = _OPEN_ARRAYS[key]
    arrays.update(open_arrays(path, [name for name in values if name not in arrays]))
    _settle([arrays[name][where].write(value) for name, (where, value) in values.items()])  # all in flight


def _ragged(index: int, prefix: str, polygons: list[np.ndarray], dtype: type) -> dict:
    """``{prefix}_offsets`` and ``{prefix}_coords`` of one entry's polygons, as whole chunks."""
    offsets = np.cumsum([0] + [len(p) for p in polygons]).astype(np.int32)
    if len(polygons) > MAX_POLYGONS or offsets[-1] > MAX_POINTS:
        raise ValueError(f"{len(polygons)} {prefix} polygons of {offsets[-1]} points exceed the store's capacity")
    values = {f"{prefix}_offsets": _whole_chunks(index, offsets, _OFFSET_CHUNK)}
    if polygons:
        points = np.concatenate([np.asarray(p).reshape(-1, 2) for p in polygons]).astype(dtype)
        values[f"{prefix}_coords"] = _whole_chunks(index, points, _COORD_CHUNK)
    return values


class ChunkReader:
    """Reads whole chunks of one array straight from their files.

    Every read of a map would otherwise pay zarr's per-call event-loop overhead (about a
    millisecond, more than decoding the chunk). The layout is our own and checked
    here against the array's zarr.json, so this reads exactly what zarr would.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.folder = root / name
        try:
            meta = json.loads((self.folder / "zarr.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise StoreError(f"{self.folder}/zarr.json: unreadable array metadata ({error})") from None
        codecs = [codec["name"] for codec in meta["codecs"]]
        encoding = meta["chunk_key_encoding"]
        if codecs != ["bytes", "zstd"] or encoding != {"name": "default", "configuration": {"separator": "/"}}:
            raise StoreError(f"{self.folder}: unexpected codecs {codecs} or chunk keys {encoding}")
        endian = meta["codecs"][0].get("configuration", {}).get("endian", "little")
        self.dtype = np.dtype(meta["data_type"])
        if endian != sys.byteorder and self.dtype.itemsize > 1:
            raise StoreError(f"{self.folder}: {endian}-endian data on a {sys.byteorder}-endian machine")
        self.chunk = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
        self.shape = tuple(meta["shape"])
        self.fill = meta["fill_value"]
        self.zstd = Zstd()

    def path(self, index: int, chunk: int = 0) -> Path:
        """The file of chunk ``chunk`` (along axis 1) of image ``index``."""
        key = f"c/{index}" + (f"/{chunk}" + "/0" * (len(self.chunk) - 2) if len(self.chunk) > 1 else "")
        return self.folder / key

    def paths(self, index: int, length: int) -> list[Path]:
        """The files holding the first ``length`` items along axis 1 of image ``index``."""
        return [self.path(index, chunk) for chunk in range(-(-length // self.chunk[1]))]

    def read(self, index: int, chunk: int = 0, out: np.ndarray | None = None) -> np.ndarray:
        """Chunk ``chunk`` (along axis 1) of image ``index``, shaped as the chunk without its first axis.

        ``out``, a C-contiguous array of the chunk's dtype and shape, receives it without a copy.
        """
        path = self.path(index, chunk)
        if out is None:
            out = np.empty(self.chunk[1:], dtype=self.dtype)
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # zarr does not write a chunk that is all fill value
            out[...] = self.fill
            return out
        try:
            self.zstd.decode(data, out=out)
        except (RuntimeError, ValueError) as error:
            raise StoreError(f"{path}: damaged chunk ({error})") from None
        return out

    def read_prefix(self, index: int, length: int) -> np.ndarray:
        """The first ``length`` items along axis 1 of image ``index``, across chunks."""
        parts = [self.read(index, chunk) for chunk in range(len(self.paths(index, length)))]
        return np.concatenate(parts)[:length] if parts else np.zeros((0, *self.chunk[2:]), self.dtype)

    def count(self) -> int:
        """Images in the array (from its metadata)."""
        return self.shape[0]
