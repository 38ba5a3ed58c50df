import multiprocessing
import pickle
import queue

import numpy as np
import pytest
import zarr

from ocr_targets import open_store
from ocr_targets.store import StoreError
from tests.helpers import flip_byte


@pytest.fixture
def store_path(made_store):
    return made_store[2]


def test_reader_reads_what_zarr_reads(store_path):
    store = open_store(store_path)
    group = zarr.open_group(store_path, mode="r")
    for index in range(len(store)):
        entry = store[index]
        binary = group["binary_maps"][index]
        np.testing.assert_array_equal(entry.prob_map, binary[0].astype(np.float32))
        np.testing.assert_array_equal(entry.prob_mask, binary[1])
        np.testing.assert_array_equal(entry.thresh_mask, binary[2])
        np.testing.assert_array_equal(entry.thresh_map, group["thresh_map"][index])
        np.testing.assert_array_equal(entry.matrix, group["matrices"][index, 0])
        np.testing.assert_array_equal(entry.inverse_matrix, group["matrices"][index, 1])
        height, width, orientation, shrunk, words, dropped = group["image_info"][index]
        assert entry.original_size == (height, width) and entry.orientation == orientation
        assert entry.dropped_points == dropped
        for prefix, polygons, count in (("shrunk", entry.shrunk_polygons, shrunk), ("word", entry.words, words)):
            assert len(polygons) == count
            offsets = group[f"{prefix}_offsets"][index, : count + 1]
            coords = group[f"{prefix}_coords"][index, : offsets[-1]]
            np.testing.assert_array_equal(np.concatenate(polygons), coords)
        assert entry.ignore == group["word_ignore"][index, :words].astype(bool).tolist()
        assert entry.content_hash == bytes(group["content_hash"][index]).hex()
        assert entry.prob_map.flags.writeable and entry.prob_mask.flags.writeable


def test_store_surface(store_path):
    store = open_store(store_path)
    assert len(store) == 12 and store.filenames[0] == "icdar2015_img_1.jpg"
    assert store.index_of("wildreceipt_1.jpeg") == 10
    assert store[-1].filename == store.filenames[-1]
    assert store.done().tolist() == [1] * 12
    assert "12 images" in repr(store)
    with pytest.raises(KeyError, match="'nope.jpg' is not in the store"):
        store.index_of("nope.jpg")
    with pytest.raises(IndexError, match="index 12 is out of range for the store .* of 12 images"):
        store[12]
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone[3].thresh_map, store[3].thresh_map)


def _maps_of(store, indices):
    out = [store._empty_maps() for _ in indices]
    store.read_maps_into(indices, out)
    return out


def test_a_batch_across_blocks_reads_each_entry_in_its_place(store_path):
    store = open_store(store_path)
    indices = [11, 0, 5, 0, 4]  # three blocks of 4, out of order, one entry twice
    for index, maps in zip(indices, _maps_of(store, indices), strict=True):
        entry = store[index]
        for name, values in maps.items():
            np.testing.assert_array_equal(values, getattr(entry, name), err_msg=f"{name} of entry {index}")


def _read_in_child(store, indices, results):
    results.put((_maps_of(store, indices), store.content_hashes(), store.words(7)))


def test_a_forked_process_reads_after_its_parent_decoded(store_path):
    """zarrs' thread pool does not survive fork: a DataLoader worker forked after its parent
    read batches must still read them, not wait forever."""
    store = open_store(store_path)
    indices = [11, 0, 5, 8]
    expected = (_maps_of(store, indices), store.content_hashes(), store.words(7))  # the parent decodes first
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_read_in_child, args=(store, indices, results))
    child.start()
    try:
        got = results.get(timeout=60)
    except queue.Empty:
        pytest.fail("the forked process never finished reading")
    finally:
        child.join(10)
        child.kill()
    for a, b in zip(got[0], expected[0], strict=True):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
    assert got[1] == expected[1]
    assert all(np.array_equal(p, q) for p, q in zip(got[2][0], expected[2][0], strict=True))


def test_missing_or_foreign_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no target store here"):
        open_store(tmp_path / "nothing.zarr")
    zarr.open_group(tmp_path / "other.zarr", mode="w")
    with pytest.raises(StoreError, match="not one written by ocr-targets"):
        open_store(tmp_path / "other.zarr")


@pytest.mark.parametrize("name", ["thresh_map", "binary_maps", "matrices"])  # each kind of compression
def test_damaged_chunk_is_detected(store_path, name):
    flip_byte(store_path, name, 4)
    store = open_store(store_path)
    with pytest.raises(StoreError, match=r"targets.zarr entry 4: damaged or unreadable"):
        store[4]
    if name != "matrices":  # and in a batch, as the collate reads the maps
        with pytest.raises(StoreError, match="damaged or unreadable"):
            store.read_maps_into([5, 4], [store._empty_maps(), store._empty_maps()])
    assert store[5].prob_map.any()  # the other entries of its shard read as they are
