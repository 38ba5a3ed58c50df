"""Reading a store by dataset index: what the collate, ``verify`` and ``show`` use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import TargetConfig
from .store import (
    BINARY_MAPS,
    LEGACY_PAD,
    MAP_DTYPES,
    SCHEMA_VERSION,
    ChunkReader,
    StoreError,
    content_hashes,
    decode_thresh,
    done_flags,
    missing_chunks,
)


@dataclass(frozen=True)
class Entry:
    """One image's stored targets, decoded: maps are float32 whatever the stored dtype."""

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
    original_size: tuple[int, int]  # (height, width), upright
    orientation: int  # the image's EXIF orientation
    words: list[np.ndarray]  # (N, 2) float32: the word polygons the targets were made of
    ignore: list[bool]  # their ignore flags
    image: np.ndarray | None  # (S, S, 3) uint8 after the validation transform, if the store holds images


class TargetStore:
    """A read-only store, by dataset index. Open it with :func:`open_store`.

    Cheap to pickle into DataLoader workers: it carries the path and the root
    attributes; each process opens its own readers on first use.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            root = json.loads((self.path / "zarr.json").read_text())
            self.attrs: dict = root["attributes"]["ocr_targets"]
        except FileNotFoundError:
            raise StoreError(f"{self.path}: no target store here; make one with `ocr-targets precompute`") from None
        except NotADirectoryError:
            raise StoreError(f"{self.path}: is a file, not a store (a STORE.zarr directory)") from None
        except OSError as error:
            raise StoreError(f"{self.path}: cannot read the store ({error.strerror})") from None
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
        self.pad: str = self.attrs["settings"].get("pad", LEGACY_PAD)
        self.has_images: bool = self.attrs["settings"].get("with_images", False)
        self._index = {name: index for index, name in enumerate(self.filenames)}
        self._readers: dict[str, ChunkReader] = {}

    def __len__(self) -> int:
        return len(self.filenames)

    def __repr__(self) -> str:
        return f"TargetStore({str(self.path)!r}, {len(self)} images, size {self.size}, pad {self.pad})"

    def find(self, name: str) -> int | None:
        """The index of image ``name``, or None."""
        return self._index.get(name)

    def index_of(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"{name!r} is not in the store {self.path}") from None

    def _reader(self, name: str) -> ChunkReader:
        if name not in self._readers:
            self._readers[name] = ChunkReader(self.path, name)
        return self._readers[name]

    def _position(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for the store {self.path} of {len(self)} images")
        return index % len(self)

    def missing_chunks(self, index: int) -> list[Path]:
        """Chunk files that a done entry must have but that are not on disk (zarr would read zeros)."""
        return missing_chunks(self._reader, self._position(index))

    def info(self, index: int) -> tuple[int, int, int, int, int]:
        """(height, width, EXIF orientation, shrunk polygons, words) of entry ``index``: the
        image's upright size and how many polygons of each kind it holds."""
        return tuple(int(value) for value in self._reader("image_info").read(self._position(index)))

    def matrices(self, index: int) -> np.ndarray:
        """(2, 3, 3) float64: the forward matrix (original -> target) and the baseline's inverse."""
        return self._reader("matrices").read(self._position(index))

    def _ragged(self, index: int, prefix: str, count: int) -> list[np.ndarray]:
        offsets = self._reader(f"{prefix}_offsets").read_prefix(index, count + 1)
        coords = self._reader(f"{prefix}_coords").read_prefix(index, int(offsets[-1]))
        return [coords[offsets[k] : offsets[k + 1]] for k in range(count)]

    def words(self, index: int) -> tuple[list[np.ndarray], list[bool]]:
        """The entry's word polygons ((N, 2) float32, target coordinates) and ignore flags."""
        index = self._position(index)
        return self._words(index, self.info(index)[4])

    def _words(self, index: int, count: int) -> tuple[list[np.ndarray], list[bool]]:
        ignore = self._reader("word_ignore").read_prefix(index, count)
        return self._ragged(index, "word", count), [bool(flag) for flag in ignore]

    def image(self, index: int) -> np.ndarray:
        """The entry's image after the validation transform, (S, S, 3) uint8 (stores made --with-images)."""
        if not self.has_images:
            raise StoreError(
                f"{self.path}: holds no images; make it with `ocr-targets precompute --with-images --overwrite`"
            )
        return self._reader("images").read(self._position(index))

    def is_done(self, index: int) -> bool:
        return bool(self._reader("done").read(self._position(index)))

    def done(self) -> np.ndarray:
        """The done flag of every entry."""
        return done_flags(self._reader("done"))

    def content_hashes(self) -> list[str]:
        """The content hash of every entry."""
        return content_hashes(self._reader("content_hash"))

    def image_file(self, index: int) -> tuple[tuple[int, int], bytes]:
        """Entry ``index``'s image file as the job read it: (size, mtime in ns), and its bytes' digest."""
        index = self._position(index)
        size, mtime = (int(value) for value in self._reader("file_stat").read(index))
        return (size, mtime), bytes(self._reader("image_digest").read(index))

    def image_files(self) -> tuple[np.ndarray, list[bytes]]:
        """Every entry's image file (size, mtime) as an (N, 2) array, and its bytes' digest."""
        files = [self.image_file(index) for index in range(len(self))]
        return np.array([stat for stat, _ in files], dtype=np.int64).reshape(-1, 2), [digest for _, digest in files]

    def content_hash(self, index: int) -> str:
        return bytes(self._reader("content_hash").read(self._position(index))).hex()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_readers": {}}  # each process opens its own readers

    def read_maps(self, index: int, checked: bool = False) -> dict[str, np.ndarray]:
        """The maps of entry ``index``, as the fast path makes them (float32 maps, uint8 masks)."""
        size = (self.size, self.size)
        maps = {name: np.empty(size, dtype=dtype) for name, dtype in MAP_DTYPES.items()}
        self.read_maps_into(index, maps, checked)
        return maps

    def read_maps_into(self, index: int, out: dict[str, np.ndarray], checked: bool = False) -> None:
        """Decode the maps of entry ``index`` into ``out`` (arrays of MAP_DTYPES, e.g. batch slices).

        ``checked=True`` skips the done flag, for callers that checked every flag once.
        """
        index = self._position(index)
        if not checked and not self.is_done(index):
            raise StoreError(
                f"{self.path}: entry {index} ({self.filenames[index]}) was never completed "
                "(its image failed, or a run was interrupted); rerun `ocr-targets precompute`"
            )
        binary = self._reader("binary_maps").read(index)
        for channel, name in enumerate(BINARY_MAPS):
            np.copyto(out[name], binary[channel])
        thresh = self._reader("thresh_map")
        target = out["thresh_map"]
        if thresh.dtype == np.float32 and target.flags.c_contiguous:
            thresh.read(index, out=target)
        else:
            target[...] = decode_thresh(thresh.read(index), self.config)

    def __getitem__(self, index: int) -> Entry:
        maps = self.read_maps(index)
        index = self._position(index)
        height, width, orientation, shrunk, count = self.info(index)
        matrices = self.matrices(index)
        words, ignore = self._words(index, count)
        return Entry(
            index=index,
            filename=self.filenames[index],
            content_hash=self.content_hash(index),
            shrunk_polygons=self._ragged(index, "shrunk", shrunk),
            matrix=matrices[0],
            inverse_matrix=matrices[1],
            original_size=(height, width),
            orientation=orientation,
            words=words,
            ignore=ignore,
            image=self.image(index) if self.has_images else None,
            **maps,
        )


def open_store(path: str | Path) -> TargetStore:
    """Open a store written by ``ocr-targets precompute``, read-only."""
    return TargetStore(path)
