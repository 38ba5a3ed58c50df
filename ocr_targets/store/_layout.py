"""The store's layout: which arrays, their shapes, shards and codecs, and the threshold map's dtypes.

zarr v3, every array sharded by blocks of K images along its first axis (``--block K``,
64 by default): one object per array per block, so a store of N images is O(N / K)
objects, and one task writes whole shards, never sharing one with another task. Inside
a shard, each image is its own inner chunk with a checksum, so a reader fetches only the
bytes of the images it reads, and a corrupted chunk fails to decode instead of decoding
to garbage (see :func:`compressors`). A ragged array is cut into runs of 1024 polygons
or 8192 points, and a shard holds one run of its block's images (:meth:`ArraySpec.shard`):
a block whose images fit one run is one object, as for the other arrays. N images, S the
target side:

    binary_maps      (N, 3, S, S) uint8   prob_map, prob_mask, thresh_mask (0/1, lossless)
    thresh_map       (N, S, S)    float32 | float16 | uint8 (see choices.THRESH_DTYPES)
    matrices         (N, 2, 3, 3) float64 forward (original -> target) and inverse matrix
    image_info       (N, 6)       int32   original height, width, EXIF orientation, shrunk polygons, words,
                                          word points the resize dropped (> 0: later words shifted)
    content_hash     (N, 32)      uint8   SHA-256 of image bytes, words, parameters, algorithm
    image_digest     (N, 32)      uint8   SHA-256 of the image file's bytes
    file_stat        (N, 2)       int64   the image file's size and mtime (ns) when it was read, so
                                          a check can skip hashing files that have not changed
    shrunk_offsets   (N, P)       int32   polygon k is shrunk_coords[i, offsets[k]:offsets[k + 1]]
    shrunk_coords    (N, Q, 2)    int32   the shrunk polygons' points, flat (ragged per image)
    word_offsets     (N, P)       int32   the words as the dataset hands them to the collate
    word_coords      (N, Q, 2)    float32   (target coordinates, after the word filters), flat
    word_ignore      (N, P)       uint8   1 for a word ignored in the DB masks
    images           (N, S, S, 3) uint8   only with --with-images: the image as the validation
                                          transform leaves it, before Normalize
    done             (N,)         uint32  once the entry's block is written, the tag of the image name
                                          whose targets it holds (:func:`name_tags`; 0: not done), so a
                                          read by index checks that the entry is the file list's image;
                                          chunks of 65536, not sharded: only the job's client writes it

Beside the arrays: ``filenames.json`` (the dataset order; out of the root attributes, which
every zarr open reads), ``generation`` (a token a job replaces before it changes any entry,
and again once the store is laid out anew: a reader compares it with the one it opened, after
every read) and, while a job writes, the lock object ``.lock``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from zarr.codecs import BloscCodec, ZstdCodec

from ..arrays import BINARY_MAPS, FLOAT_MAPS
from ..config import TargetConfig

SCHEMA_VERSION = 6
MAP_ARRAYS = ("binary_maps", *FLOAT_MAPS)  # the arrays that hold the maps (arrays.MAPS)
DONE_CHUNK = 65536
# Per image at most 16 runs of 1024 polygon offsets and 16 runs of 8192 points: a shard's
# index then stays at 16 entries per image, and runs never written cost nothing.
OFFSET_RUN, POINT_RUN, RUNS = 1024, 8192, 16
MAX_POLYGONS = OFFSET_RUN * RUNS - 1
MAX_POINTS = POINT_RUN * RUNS
ZSTD_LEVEL = 3


class ArraySpec(NamedTuple):
    tail: tuple[int, ...]  # the shape after N
    dtype: str
    run: int | None = None  # ragged arrays: the inner chunk's length along axis 1

    def shard(self, block: int) -> tuple[int, ...]:
        """A shard's shape: ``block`` whole entries, or one run of them. zarrs builds every
        inner chunk of a shard it writes, so a shard of all 16 runs cost 16 MB of zeros a
        block: a quarter of a job's writing, when all its images fit one run."""
        return (block, self.run, *self.tail[1:]) if self.run else (block, *self.tail)

    @property
    def inner(self) -> tuple[int, ...]:
        """An inner chunk's shape: one entry, or one run of it."""
        return self.shard(1)


def layout(size: int, thresh_dtype: str, with_images: bool) -> dict[str, ArraySpec]:
    """Every sharded array of a store."""
    offsets, points = (MAX_POLYGONS + 1,), (MAX_POINTS, 2)
    arrays = {
        "binary_maps": ArraySpec((len(BINARY_MAPS), size, size), "uint8"),
        **{name: ArraySpec((size, size), thresh_dtype) for name in FLOAT_MAPS},
        "matrices": ArraySpec((2, 3, 3), "float64"),
        "image_info": ArraySpec((6,), "int32"),
        "content_hash": ArraySpec((32,), "uint8"),
        "image_digest": ArraySpec((32,), "uint8"),
        "file_stat": ArraySpec((2,), "int64"),
        "shrunk_offsets": ArraySpec(offsets, "int32", OFFSET_RUN),
        "shrunk_coords": ArraySpec(points, "int32", POINT_RUN),
        "word_offsets": ArraySpec(offsets, "int32", OFFSET_RUN),
        "word_coords": ArraySpec(points, "float32", POINT_RUN),
        "word_ignore": ArraySpec(offsets, "uint8", OFFSET_RUN),
    }
    if with_images:
        arrays["images"] = ArraySpec((size, size, 3), "uint8")
    return arrays


def compressors(name: str) -> list[BloscCodec | ZstdCodec]:
    """How array ``name``'s inner chunks are compressed and checked.

    Every chunk ends in Zstd with its checksum, which the Zstd decoder itself verifies, on
    whole shards and on single inner chunks alike (zarrs skips a CRC32C codec's check when it
    reads one inner chunk of a shard). The maps, 2.8 MB of each image's 2.9 and what a job
    writes and a batch reads, are compressed for speed:

    - the binary maps (bytes of 0 and 1) are byte-shuffled and LZ4-compressed first (Blosc),
      so Zstd level 1 passes over their 9 KiB instead of 1.2 MB;
    - the threshold map's floats, which LZ4 hardly shrinks, go to Zstd's fast level -3 alone:
      on the bench's receipts in 60 % of the time level 3 takes, 166 KiB against 135 an image.
    """
    if name == "binary_maps":
        return [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"), ZstdCodec(level=1, checksum=True)]
    if name in FLOAT_MAPS:
        return [ZstdCodec(level=-3, checksum=True)]
    return [ZstdCodec(level=ZSTD_LEVEL, checksum=True)]


RAGGED_ARRAYS = tuple(name for name, spec in layout(1, "float32", False).items() if spec.run)
POLYGONS = ("shrunk", "word")  # the ragged polygons, {prefix}_offsets and {prefix}_coords, counted in image_info[3:5]


def over_capacity(kind: str, polygons: int, points: int) -> str | None:
    """Why an image of ``polygons`` polygons of ``points`` points of a ``kind`` does not fit an
    entry, or None: the job checks words before any geometry, the rows check what it made."""
    if polygons <= MAX_POLYGONS and points <= MAX_POINTS:
        return None
    return (
        f"{polygons} {kind} polygons of {points} points exceed the store's capacity "
        f"({MAX_POLYGONS} polygons, {MAX_POINTS} points per image)"
    )


def name_tags(names: Sequence[str]) -> np.ndarray:
    """What ``done`` holds for entries holding the targets of ``names``: a CRC-32 of each name
    (never 0, which is "not done"). 32 bits tell a swapped or shifted entry from its own at the
    cost of 4 bytes an entry, 4 MB for the done flags of a million images."""
    tags = [zlib.crc32(name.encode("utf-8", "surrogatepass")) or 1 for name in names]
    return np.array(tags, dtype=np.uint32)


def encode_thresh(thresh_map: np.ndarray, dtype: str, config: TargetConfig) -> np.ndarray:
    if dtype == "uint8":
        scaled = (thresh_map - config.thresh_min) * (255 / (config.thresh_max - config.thresh_min))
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return thresh_map.astype(dtype, copy=False)


def decode_thresh(stored: np.ndarray, config: TargetConfig) -> np.ndarray:
    if stored.dtype == np.uint8:
        step = np.float32((config.thresh_max - config.thresh_min) / 255)
        return stored.astype(np.float32) * step + np.float32(config.thresh_min)
    return stored.astype(np.float32)
