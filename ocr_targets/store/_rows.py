"""An entry as the arrays hold it: a computed image's :class:`Record` made into one row per
array, and rows read back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import zarr

from ..arrays import BINARY_MAPS, FLOAT_MAPS
from ..geometry import Letterbox
from ..maps import Targets
from ._layout import POLYGONS, RAGGED_ARRAYS, encode_thresh, over_capacity
from ._settings import StoreSettings
from ._zarr import gather, request, request_entries


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

    def row(self, settings: StoreSettings) -> dict[str, np.ndarray]:
        """The entry's values in every array but ``done``: fixed-shape rows, and the ragged ones
        (offsets, points, ignore flags) as long as the entry needs."""
        targets, letterbox = self.targets, self.letterbox
        info = [*letterbox.original_size, self.orientation, len(targets.shrunk_polygons), len(self.words)]
        row = {
            "binary_maps": np.stack([getattr(targets, name).astype(np.uint8) for name in BINARY_MAPS]),
            **{
                name: encode_thresh(getattr(targets, name), settings.thresh_dtype, settings.config)
                for name in FLOAT_MAPS
            },
            "matrices": np.stack([letterbox.matrix, letterbox.inverse_matrix]),
            "image_info": np.array([*info, self.dropped_points], dtype=np.int32),
            "content_hash": np.frombuffer(bytes.fromhex(self.content_hash), dtype=np.uint8),
            "image_digest": np.frombuffer(self.image_digest, dtype=np.uint8),
            "file_stat": np.array(self.file_stat, dtype=np.int64),
            **_ragged("shrunk", targets.shrunk_polygons, np.int32),
            **_ragged("word", self.words, np.float32),
            "word_ignore": np.array(self.ignore, dtype=np.uint8),
        }
        if self.image is not None:
            row["images"] = self.image
        return row


def _ragged(prefix: str, polygons: list[np.ndarray], dtype: type) -> dict[str, np.ndarray]:
    offsets = np.cumsum([0] + [len(p) for p in polygons]).astype(np.int32)
    problem = over_capacity(prefix, len(polygons), int(offsets[-1]))
    if problem:
        raise ValueError(problem)
    points = [np.asarray(p).reshape(-1, 2) for p in polygons]
    coords = np.concatenate(points).astype(dtype) if points else np.zeros((0, 2), dtype=dtype)
    return {f"{prefix}_offsets": offsets, f"{prefix}_coords": coords}


def split(offsets: np.ndarray, coords: np.ndarray) -> list[np.ndarray]:
    """A ragged array's polygons: polygon k is ``coords[offsets[k]:offsets[k + 1]]``."""
    return [coords[offsets[k] : offsets[k + 1]] for k in range(len(offsets) - 1)]


def read_rows(arrays: dict[str, zarr.Array], indices: Sequence[int], what: object) -> list[dict[str, np.ndarray]]:
    """Entries ``indices``' values in every array of ``arrays``, as :meth:`Record.row` makes them
    (``done``, if among ``arrays``, is read as one more fixed array). ``image_info`` must be among
    them if a ragged array is: it holds how far each entry's polygons reach.

    One call reads every fixed array and the first run of every ragged one, which holds all of
    an entry of up to 1023 polygons and 8192 points (on object storage, one round trip); an
    entry beyond that is read again, whole."""
    fixed = [name for name in arrays if name not in RAGGED_ARRAYS]
    ragged = [name for name in RAGGED_ARRAYS if name in arrays]
    calls = [request_entries(arrays[name], indices) for name in fixed]
    calls += [request_entries(arrays[name], indices, arrays[name].chunks[1]) for name in ragged]
    values = dict(zip(fixed + ragged, gather(calls, what), strict=True))
    rows = []
    for position, index in enumerate(indices):
        row = {name: values[name][position] for name in fixed}
        if ragged:
            firsts = {name: values[name][position] for name in ragged}
            row.update(_ragged_row(row["image_info"], firsts) or _read_ragged(arrays, index, row["image_info"], what))
        rows.append(row)
    return rows


def _counts(info: np.ndarray, firsts: dict[str, np.ndarray]) -> dict[str, int]:
    """How many polygons the entry has of each kind whose arrays are read."""
    return {
        prefix: int(count) for prefix, count in zip(POLYGONS, info[3:5], strict=True) if f"{prefix}_offsets" in firsts
    }


def _ragged_row(info: np.ndarray, firsts: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """An entry's ragged values cut from the first runs read, or None if they reach beyond them."""
    row = {}
    for prefix, count in _counts(info, firsts).items():
        offsets = firsts[f"{prefix}_offsets"]
        if count + 1 > len(offsets) or offsets[count] > len(firsts[f"{prefix}_coords"]):
            return None
        row[f"{prefix}_offsets"] = offsets[: count + 1]
        row[f"{prefix}_coords"] = firsts[f"{prefix}_coords"][: offsets[count]]
    if "word_ignore" in firsts:
        row["word_ignore"] = firsts["word_ignore"][: int(info[4])]
    return row


def _read_ragged(arrays: dict[str, zarr.Array], index: int, info: np.ndarray, what: object) -> dict[str, np.ndarray]:
    """An entry's ragged values, read as far as they reach: its offsets, then its points and flags."""
    counts = _counts(info, arrays)
    offsets = gather([request(arrays[f"{p}_offsets"], (index, slice(0, c + 1))) for p, c in counts.items()], what)
    row = {f"{prefix}_offsets": values for prefix, values in zip(counts, offsets, strict=True)}
    reads = {f"{prefix}_coords": (index, slice(0, int(row[f"{prefix}_offsets"][-1]))) for prefix in counts}
    if "word_ignore" in arrays:
        reads["word_ignore"] = (index, slice(0, int(info[4])))
    values = gather([request(arrays[name], selection) for name, selection in reads.items()], what)
    return {**row, **dict(zip(reads, values, strict=True))}
