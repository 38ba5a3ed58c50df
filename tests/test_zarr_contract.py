"""What the store relies on in zarr beyond its documented API (``ocr_targets/store/_zarr.py``),
checked against the installed zarr, so that an upgrade that changes one fails here, by name."""

from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.abc.store import SuffixByteRequest
from zarr.storage import LocalStore

from ocr_targets.store import StoreError
from ocr_targets.store._layout import compressors
from ocr_targets.store._zarr import PARTIAL, ShardIndexes, gather, open_arrays, request_entries, shard_keys
from tests.helpers import flip_byte

BLOCK = 4


def _arrays(root: Path) -> dict[str, zarr.Array]:
    """A fixed-shape array and a ragged one (runs of 8 along axis 1), sharded by blocks of 4
    entries, 10 entries each, as the store lays its arrays out."""
    group = zarr.open_group(LocalStore(root), mode="w", zarr_format=3)
    fixed = group.create_array(
        "fixed", shape=(10, 3, 5), dtype="int32", chunks=(1, 3, 5), shards=(BLOCK, 3, 5), compressors=compressors("x")
    )
    ragged = group.create_array("ragged", shape=(10, 32, 2), dtype="float32", chunks=(1, 8, 2), shards=(BLOCK, 8, 2))
    fixed[:] = np.arange(fixed.size, dtype="int32").reshape(fixed.shape)
    ragged[:, :20] = np.arange(10 * 20 * 2, dtype="float32").reshape(10, 20, 2)
    return open_arrays(zarr.open_group(LocalStore(root), mode="r"), ["fixed", "ragged"])


def test_whole_entries_in_one_selection_are_zarrs_own_values(tmp_path):
    """``AsyncArray._get_selection`` takes our ``Indexer`` of whole entries across shards."""
    arrays = _arrays(tmp_path)
    indices = [9, 0, 5, 4, 5]
    fixed, ragged = gather(
        [request_entries(arrays["fixed"], indices), request_entries(arrays["ragged"], indices, 8)], "contract"
    )
    np.testing.assert_array_equal(fixed, arrays["fixed"][indices])
    np.testing.assert_array_equal(ragged, arrays["ragged"][indices, :8])


def test_shard_keys_are_the_objects_zarr_writes(tmp_path):
    arrays = _arrays(tmp_path)
    written = {str(path.relative_to(tmp_path)) for path in tmp_path.rglob("c/*/*") if path.is_file()}
    written |= {str(path.relative_to(tmp_path)) for path in tmp_path.rglob("c/*/*/*") if path.is_file()}
    expected = set()
    for block in range(3):
        expected |= set(shard_keys("fixed", arrays["fixed"], block, 3))
        expected |= set(shard_keys("ragged", arrays["ragged"], block, 20))  # 20 values: runs 0, 1, 2
    assert written == expected


def test_a_local_write_goes_through_a_partial_file(tmp_path, monkeypatch):
    """What a killed write leaves beside the key: the job deletes these ``*.partial`` files."""
    replaced = []
    real = Path.replace
    monkeypatch.setattr(Path, "replace", lambda self, target: replaced.append(self.name) or real(self, target))
    zarr.open_group(LocalStore(tmp_path), mode="w", zarr_format=3).create_array("a", shape=(2,), dtype="uint8")[:] = 1
    assert replaced and all(name.endswith(PARTIAL) for name in replaced)


def test_a_damaged_chunk_is_a_store_error_naming_what_was_read(tmp_path):
    """The zarrs pipeline's checksum failure is recognised from its error (no OS error number)."""
    arrays = _arrays(tmp_path)
    flip_byte(tmp_path, "fixed", 5)
    with pytest.raises(StoreError, match="the entries read: damaged or unreadable"):
        gather([request_entries(arrays["fixed"], [5])], "the entries read")


def test_zarr_reads_a_shard_index_as_a_suffix_of_the_object(tmp_path):
    """What :class:`ShardIndexes` keeps: a second read of the same shard asks for no index."""
    _arrays(tmp_path)
    suffixes = []
    local = LocalStore(tmp_path, read_only=True)
    real = local.get

    async def get(key, prototype, byte_range=None):
        if isinstance(byte_range, SuffixByteRequest):
            suffixes.append(key)
        return await real(key, prototype, byte_range)

    local.get = get
    array = zarr.open_group(ShardIndexes(local), mode="r")["fixed"]
    np.testing.assert_array_equal(array[5], np.arange(15 * 5, 15 * 6).reshape(3, 5))
    first = list(suffixes)
    np.testing.assert_array_equal(array[6], np.arange(15 * 6, 15 * 7).reshape(3, 5))
    assert first == ["fixed/c/1/0/0"] and suffixes == first
