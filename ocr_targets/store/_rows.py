"""An entry as the arrays hold it: a computed image's :class:`Record` made into one row per
array, and rows read back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import zarr

from ..geometry import Letterbox
from ..maps import Targets
from ._layout import MAX_POINTS, MAX_POLYGONS, POLYGONS, RAGGED_ARRAYS, encode_thresh
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
            "binary_maps": np.stack([targets.prob_map.astype(np.uint8), targets.prob_mask, targets.thresh_mask]),
            "thresh_map": encode_thresh(targets.thresh_map, settings.thresh_dtype, settings.config),
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
    if len(polygons) > MAX_POLYGONS or offsets[-1] > MAX_POINTS:
        raise ValueError(
            f"{len(polygons)} {prefix} polygons of {offsets[-1]} points exceed the store's capacity "
            f"({MAX_POLYGONS} polygons, {MAX_POINTS} points per image)"
        )
    points = [np.asarray(p).reshape(-1, 2) for p in polygons]
    coords = np.concatenate(points).astype(dtype) if points else np.zeros((0, 2), dtype=dtype)
    return {f"{prefix}_offsets": offsets, f"{prefix}_coords": coords}


def split(offsets: np.ndarray, coords: np.ndarray) -> list[np.ndarray]:
    """A ragged array's polygons: polygon k is ``coords[offsets[k]:offsets[k + 1]]``."""
    return [coords[offsets[k] : offsets[k + 1]] for k in range(len(offsets) - 1)]


def read_rows(arrays: dict[str, zarr.Array], indices: Sequence[int], what: object) -> list[dict[str, np.ndarray]]:
    """Entries ``indices``' values in every array of ``arrays``, as :meth:`Record.row` makes them."""
    fixed = [name for name in arrays if name not in RAGGED_ARRAYS]
    values = dict(zip(fixed, gather([request_entries(arrays[name], indices) for name in fixed], what), strict=True))
    rows = [{name: values[name][position] for name in fixed} for position in range(len(indices))]
    counts = [[int(count) for count in row["image_info"][3:5]] for row in rows]
    offsets = iter(
        gather(
            [
                request(arrays[f"{prefix}_offsets"], (index, slice(0, count + 1)))
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
                    request(arrays["shrunk_coords"], (index, slice(0, int(row["shrunk_offsets"][-1])))),
                    request(arrays["word_coords"], (index, slice(0, int(row["word_offsets"][-1])))),
                    request(arrays["word_ignore"], (index, slice(0, len(row["word_offsets"]) - 1))),
                )
            ],
            what,
        )
    )
    for row in rows:
        row["shrunk_coords"], row["word_coords"], row["word_ignore"] = next(ragged), next(ragged), next(ragged)
    return rows
