"""Reading a store by dataset index: what the collate, the dataset, ``verify`` and ``show`` use."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from ..arrays import BINARY_MAPS, FLOAT_MAPS, MAPS
from ..location import STORAGE_ERRORS, Location, storage_problem
from ._blocks import missing_objects, refusal, unreadable_objects
from ._errors import Changed, NotDone, OtherStack, StoreError, Unreadable
from ._files import FILENAMES, GENERATION, Foreign, read_attributes, read_generation
from ._layout import DONE_CHUNK, MAP_ARRAYS, SCHEMA_VERSION, decode_thresh, name_tags
from ._lock import describe, held
from ._rows import read_rows, split
from ._settings import StoreSettings
from ._zarr import chunk_prefix, gather, open_arrays, open_group, request, request_entries, request_object


@dataclass(frozen=True)
class Entry:
    """One image's stored targets, decoded: maps are float32 whatever the stored dtype (None
    when read with ``maps=False``)."""

    index: int
    filename: str
    content_hash: str
    prob_map: np.ndarray | None
    thresh_map: np.ndarray | None
    prob_mask: np.ndarray | None
    thresh_mask: np.ndarray | None
    shrunk_polygons: list[np.ndarray]
    matrix: np.ndarray
    inverse_matrix: np.ndarray
    original_size: tuple[int, int]  # (height, width), upright
    orientation: int  # the image's EXIF orientation
    words: list[np.ndarray]  # (N, 2) float32: the word polygons the targets were made of
    ignore: list[bool]  # their ignore flags
    dropped_points: int  # word points the resize dropped (> 0: later words shifted, as in training)
    image: np.ndarray | None  # (S, S, 3) uint8 after the validation transform, if the store holds images


class TargetStore:
    """A read-only store, by dataset index. Open it with :func:`open_store`.

    Opening reads two objects (the root metadata and the file list), whatever the store's
    size. Cheap to pickle into DataLoader workers, and safe to fork into them: each process
    opens its own array handles on first use.
    """

    def __init__(self, path: str | Path | Location, storage_options: dict | None = None) -> None:
        self.location = Location.of(path, storage_options)
        self.path = self.location.url
        try:
            # first: a job that changes the store from here on replaces it (see _layout), so what
            # is read next is either what this generation holds or refused at the first read
            self.generation = read_generation(self.location)
            attrs = read_attributes(self.location)
            names = json.loads((self.location / FILENAMES).read_bytes()) if attrs is not None else None
        except FileNotFoundError:
            names = None
        except Foreign as foreign:
            raise self._not_yet() or foreign from None
        except (OSError, ValueError) as error:
            raise StoreError(f"{self.path}: cannot read the store ({error})") from None
        if attrs is None:
            raise self._not_yet() or StoreError(
                f"{self.path}: no target store here; make one with `ocr-targets precompute`"
            )
        if attrs.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema {attrs.get('schema_version')}, this library reads {SCHEMA_VERSION}; "
                "rebuild it with `ocr-targets precompute --overwrite`"
            )
        if names is None or len(names) != attrs["images"]:
            raise StoreError(f"{self.path}: its file list ({FILENAMES}) is missing or does not match its metadata")
        self.attrs: dict = attrs
        self.filenames: list[str] = names
        self.settings = StoreSettings.from_dict(attrs["settings"])
        self.config, self.size, self.pad = self.settings.config, self.settings.size, self.settings.pad
        self.has_images, self.block = self.settings.with_images, self.settings.block
        self._index = {name: index for index, name in enumerate(self.filenames)}
        self._tags: np.ndarray | None = None  # every file name's tag, once asked for
        self._arrays: dict[str, zarr.Array] = {}
        self._root: zarr.abc.store.Store | None = None
        self._pid = 0  # the process that opened ``_arrays`` and ``_root``

    def _not_yet(self) -> StoreError | None:
        """Why a folder that is no store yet may become one: a precompute job creating it."""
        writing = self.writing()
        if writing is None:
            return None
        return StoreError(f"{self.path}: a precompute job is creating this store ({writing}); wait for it to finish")

    def __len__(self) -> int:
        return len(self.filenames)

    def __repr__(self) -> str:
        return f"TargetStore({self.path!r}, {len(self)} images, size {self.size}, pad {self.pad})"

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": {}, "_root": None, "_pid": 0}  # each process opens its own handles

    def require_stack(self, wanted: str, reader: str) -> None:
        """OtherStack unless the store was made for the stack ``wanted`` (``reader``: who asks)."""
        if self.settings.stack != wanted:
            raise OtherStack(self.path, self.settings.stack, wanted, reader)

    def writing(self) -> str | None:
        """The precompute job writing the store right now (who and since when), or None."""
        holder = held(self.location)
        return None if holder is None else describe(holder)

    def find(self, name: str) -> int | None:
        """The index of image ``name``, or None."""
        return self._index.get(name)

    def index_of(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"{name!r} is not in the store {self.path}") from None

    @property
    def arrays(self) -> dict[str, zarr.Array]:
        """This process's handles on every array of the store, ``done`` first."""
        if self._pid != os.getpid():
            group = open_group(self.location)
            self._arrays = open_arrays(group, ["done", *self.settings.layout])
            self._root, self._pid = group.store, os.getpid()
        return self._arrays

    def require_unchanged(self) -> None:
        """Raise Changed if a precompute job changed the store since it was opened: one small
        object read (what every read does after its data, before it returns any); on object
        storage through this process's zarr store, which survives a fork."""
        if self.location.is_local:
            current = read_generation(self.location)
        else:
            self.arrays  # noqa: B018 (this process's handles)
            current = gather([request_object(self._root, GENERATION)], f"{self.path}/{GENERATION}")[0]
        if current != self.generation:
            raise Changed(self.path, self.writing())

    def array_layout(self) -> dict[str, tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...] | None]]:
        """Each array of the store as it is on disk: (dtype, shape, inner chunks, shards or None)."""
        return {name: (str(a.dtype), a.shape, a.chunks, a.shards) for name, a in self.arrays.items()}

    def _entry_arrays(self) -> dict[str, zarr.Array]:
        return {name: array for name, array in self.arrays.items() if name != "done"}

    def _position(self, index: int | str) -> int:
        """An entry's index, from an index (negative counts from the end) or an image's file name."""
        if isinstance(index, str):
            return self.index_of(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for the store {self.path} of {len(self)} images")
        return index % len(self)

    def _read(self, name: str, index: int | slice, *more: slice) -> np.ndarray:
        entries = [index] if isinstance(index, int) else range(len(self))[index]
        with self._refused(entries):
            value = gather([request(self.arrays[name], (index, *more))], f"{self.path} {name} entry {index}")[0]
        self.require_unchanged()
        return value

    @contextlib.contextmanager
    def _refused(self, indices: Sequence[int]) -> Iterator[None]:
        """A storage error of reading ``indices`` as Unreadable, naming each object of theirs the
        storage will not give and why (permissions on a local disk, credentials on object storage):
        the objects of each entry read, of at most 64 blocks (a whole array's read: one entry a block)."""
        try:
            yield
        except STORAGE_ERRORS as error:
            arrays = self._entry_arrays()
            probed = set(indices) if len(indices) <= 64 else {index // self.block * self.block for index in indices}
            problems = [
                problem for index in sorted(probed)[:64]
                for problem in unreadable_objects(self.location, arrays, index, self.block)
            ]  # fmt: skip
            flags = [self.location / f"{chunk_prefix('done')}/{chunk}" for chunk in {i // DONE_CHUNK for i in indices}]
            problems += [problem for chunk in flags if (problem := refusal(chunk))]
            found = list(dict.fromkeys(problems)) or [storage_problem(error, self.location)]
            what = f"entry {indices[0]}" if len(indices) == 1 else f"{len(indices)} entries"
            raise Unreadable(self.path, what, found) from error

    def read_entries(
        self, indices: Sequence[int | str], names: Iterable[str] | None = None
    ) -> list[dict[str, np.ndarray]]:
        """Entries ``indices``' values in the arrays ``names`` (default: all; ``image_info`` among
        them if a ragged array is), as the job wrote them, read in one call with their done
        flags: Changed if a job changed the store since it was opened, NotDone unless each
        entry holds its own image's targets."""
        indices = [self._position(index) for index in indices]
        arrays = {"done": self.arrays["done"]}
        arrays.update((name, self.arrays[name]) for name in (self._entry_arrays() if names is None else names))
        with self._refused(indices):
            rows = read_rows(arrays, indices, self._what(indices))
        self.require_unchanged()
        self.require_done(indices, [row["done"] for row in rows])
        return rows

    def missing_objects(self, index: int) -> list[str]:
        """Objects of the entry's block that a written block must have but that are not there
        (a read would give zeros)."""
        return missing_objects(self.location, self._entry_arrays(), self._position(index), self.block)

    def words(self, index: int) -> tuple[list[np.ndarray], list[bool]]:
        """The entry's word polygons ((N, 2) float32, target coordinates) and ignore flags."""
        words, flags, _ = self.batch_words([index])[0]
        return words, flags

    def read_items(self, indices: Sequence[int]) -> list[dict[str, np.ndarray]]:
        """What a dataset item is made of, for a batch of entries in one call (:meth:`read_entries`):
        each entry's image, stored maps (for :meth:`decode_maps`), ``image_info``, ``matrices``,
        ``word_ignore`` and its ``words`` as (N, 2) float32 polygons."""
        names = ("images", *MAP_ARRAYS, "image_info", "matrices", "word_offsets", "word_coords", "word_ignore")
        rows = self.read_entries(indices, names)
        for row in rows:
            row["words"] = split(row.pop("word_offsets"), row.pop("word_coords"))
        return rows

    def batch_words(self, indices: Sequence[int]) -> list[tuple[list[np.ndarray], list[bool], np.ndarray]]:
        """Each entry's word polygons, ignore flags and inverse matrix, for a batch in one call:
        every entry's first run of words is read with its size and matrices (on object storage,
        one round trip for the batch); an entry of more words than a run is read again whole."""
        rows = self.read_entries(indices, ("image_info", "matrices", "word_offsets", "word_coords", "word_ignore"))
        return [
            (
                split(row["word_offsets"], row["word_coords"]),
                [bool(flag) for flag in row["word_ignore"]],
                row["matrices"][1],
            )
            for row in rows
        ]

    def image(self, index: int) -> np.ndarray:
        """The entry's image after the validation transform, (S, S, 3) uint8 (stores made --with-images)."""
        if not self.has_images:
            raise StoreError(
                f"{self.path}: holds no images; make it with `ocr-targets precompute --with-images --overwrite`"
            )
        return self._read("images", self._position(index))

    def done(self) -> np.ndarray:
        """Every entry's done flag (uint8): 1 where it holds its image's targets."""
        return (self._read("done", slice(None)) == self._name_tags()).astype(np.uint8)

    def misplaced(self) -> list[int]:
        """The entries that hold another image's targets than the file list says: a file list
        replaced or edited by hand (a precompute run makes them agree again)."""
        tags = self._read("done", slice(None))
        return np.flatnonzero((tags != 0) & (tags != self._name_tags())).tolist()

    def _name_tags(self) -> np.ndarray:
        if self._tags is None:
            self._tags = name_tags(self.filenames)
        return self._tags

    def shifted(self) -> np.ndarray:
        """The indices of the done entries whose words the baseline's keypoint slicing shifted:
        the resize moved a point out of the image, albumentations dropped it, and every later
        word of the image starts one point later (the store holds what training computed)."""
        dropped = self._read("image_info", slice(None), 5)
        return np.flatnonzero((dropped > 0) & (self.done() > 0))

    def content_hashes(self) -> list[str]:
        """The content hash of every entry."""
        return [bytes(row).hex() for row in self._read("content_hash", slice(None))]

    def image_file(self, index: int) -> tuple[tuple[int, int], bytes]:
        """Entry ``index``'s image file as the job read it: (size, mtime in ns), and its bytes' digest."""
        index = self._position(index)
        size, mtime = (int(value) for value in self._read("file_stat", index))
        return (size, mtime), bytes(self._read("image_digest", index))

    def image_files(self) -> tuple[np.ndarray, list[bytes]]:
        """Every entry's image file (size, mtime) as an (N, 2) array, and its bytes' digest."""
        stats, digests = self._read("file_stat", slice(None)), self._read("image_digest", slice(None))
        return stats, [bytes(row) for row in digests]

    def read_maps(self, index: int, checked: bool = False) -> dict[str, np.ndarray]:
        """The maps of entry ``index``, as the fast path makes them (float32 maps, uint8 masks)."""
        maps = self._empty_maps()
        self.read_maps_into([index], [maps], checked)
        return maps

    def _empty_maps(self) -> dict[str, np.ndarray]:
        return {spec.name: np.empty((self.size, self.size), dtype=spec.dtype) for spec in MAPS}

    def decode_maps(self, row: dict[str, np.ndarray], maps: dict[str, np.ndarray]) -> None:
        """An entry's stored map arrays (MAP_ARRAYS of ``row``) into ``maps`` (arrays of each map's dtype)."""
        for channel, name in enumerate(BINARY_MAPS):
            np.copyto(maps[name], row["binary_maps"][channel])
        for name in FLOAT_MAPS:
            stored = row[name]
            maps[name][...] = stored if stored.dtype == np.float32 else decode_thresh(stored, self.config)

    def read_maps_into(self, indices: list[int], out: list[dict[str, np.ndarray]], checked: bool = False) -> None:
        """Decode the maps of entries ``indices`` into ``out`` (one dict of arrays per entry, by map
        name, e.g. slices of a batch), fetching every chunk of the batch at once.

        ``checked=True`` skips the done flags, for callers that checked every flag once.
        """
        indices = [self._position(index) for index in indices]
        reads = [request_entries(self.arrays[name], indices) for name in MAP_ARRAYS]
        with self._refused(indices):
            values = gather([*reads, *([] if checked else [self._read_flags(indices)])], self._what(indices))
        self.require_unchanged()
        if not checked:  # the flags were read with the maps: on object storage, one round trip for both
            self.require_done(indices, values[-1])
        for position, maps in enumerate(out):
            stored = zip(MAP_ARRAYS, values[: len(MAP_ARRAYS)], strict=True)
            self.decode_maps({name: value[position] for name, value in stored}, maps)

    def _what(self, indices: list[int]) -> str:
        return f"{self.path} entry {indices[0]}" if len(indices) == 1 else f"{self.path} entries {indices}"

    def _read_flags(self, indices: list[int]) -> Coroutine:
        """The done flags of ``indices``, each chunk of flags fetched once."""
        return self.arrays["done"].async_array.get_orthogonal_selection((np.asarray(indices),))

    def require_done(self, indices: Sequence[int], tags: Sequence[int] | None = None) -> None:
        """Raise NotDone unless each entry of ``indices`` (their done flags ``tags``, read if not
        given) holds the targets of the image the file list names."""
        if tags is None:
            with self._refused(indices):
                tags = gather([self._read_flags(list(indices))], f"{self.path} done flags")[0]
            self.require_unchanged()
        expected = name_tags([self.filenames[index] for index in indices])
        for index, tag, wanted in zip(indices, tags, expected, strict=True):
            if tag != wanted:
                raise NotDone(self.path, index, self.filenames[index], None if tag == 0 else self._holder(int(tag)))

    def _holder(self, tag: int) -> str:
        """The name of the image whose targets an entry of done flag ``tag`` holds, if in the file list."""
        found = np.flatnonzero(self._name_tags() == tag)
        return self.filenames[found[0]] if len(found) else "one not in its file list"

    def __getitem__(self, index: int | str) -> Entry:
        """Entry ``index``, or the entry of image file ``index`` (a name, as in the annotation file)."""
        return self.entry(index)

    def entry(self, index: int | str, maps: bool = True) -> Entry:
        """Entry ``index`` (or of image file ``index``), read in one call and checked (it holds its
        own image's targets, the store has not changed since it was opened); ``maps=False``
        leaves out the maps, 2.8 MB of an entry's 2.9 to decode."""
        index = self._position(index)
        names = [name for name in self._entry_arrays() if maps or name not in MAP_ARRAYS]
        row = self.read_entries([index], names)[0]
        decoded = dict.fromkeys(spec.name for spec in MAPS)
        if maps:
            decoded = self._empty_maps()
            self.decode_maps(row, decoded)
        height, width, orientation = (int(value) for value in row["image_info"][:3])
        return Entry(
            index=index,
            filename=self.filenames[index],
            content_hash=bytes(row["content_hash"]).hex(),
            shrunk_polygons=split(row["shrunk_offsets"], row["shrunk_coords"]),
            matrix=row["matrices"][0],
            inverse_matrix=row["matrices"][1],
            original_size=(height, width),
            orientation=orientation,
            words=split(row["word_offsets"], row["word_coords"]),
            ignore=[bool(flag) for flag in row["word_ignore"]],
            dropped_points=int(row["image_info"][5]),
            image=row.get("images"),
            **decoded,
        )


def open_store(path: str | Path | Location, storage_options: dict | None = None) -> TargetStore:
    """Open a store written by ``ocr-targets precompute``, read-only: a local path or an fsspec
    URL (``s3://bucket/val.zarr``) with its ``storage_options``."""
    return TargetStore(path, storage_options)
