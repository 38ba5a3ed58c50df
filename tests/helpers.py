import os

import numpy as np

# Hypothesis profiles: `make test` draws a tenth of the examples, `make test-all` (CI) every one.
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")


def examples(count: int) -> int:
    """A property test's examples: ``count`` under the ``ci`` profile, a tenth (at least 10) otherwise."""
    return count if PROFILE == "ci" else max(count // 10, 10)


def assert_same_targets(fast, reference):
    """Targets (or stored entries) equal within the contract: maps, masks, shrunk polygons."""
    np.testing.assert_array_equal(fast.prob_map, reference.prob_map)
    np.testing.assert_array_equal(fast.thresh_map, reference.thresh_map)
    np.testing.assert_array_equal(fast.prob_mask, reference.prob_mask)
    np.testing.assert_array_equal(fast.thresh_mask, reference.thresh_mask)
    assert len(fast.shrunk_polygons) == len(reference.shrunk_polygons)
    for a, b in zip(fast.shrunk_polygons, reference.shrunk_polygons, strict=True):
        np.testing.assert_array_equal(a, b)


def assert_same_arrays(a, b, storage_options=None, ignore=()):
    """Two stores (paths or URLs) equal array by array but ``ignore``, and their file lists
    equal; the ragged arrays compared over the part any entry uses."""
    from ocr_targets import open_store
    from ocr_targets.store._layout import RAGGED_ARRAYS

    first, second = open_store(a, storage_options), open_store(b, storage_options)
    assert first.filenames == second.filenames
    assert first.arrays.keys() == second.arrays.keys()
    for name, array in first.arrays.items():
        if name in ignore:
            continue
        part = (slice(None), slice(0, 4096)) if name in RAGGED_ARRAYS else (slice(None),)
        np.testing.assert_array_equal(array[part], second.arrays[name][part], err_msg=name)


def inner_chunk(store, name: str, index: int) -> tuple:
    """Where entry ``index``'s first inner chunk lies in its shard of array
    ``name`` of the local store ``store``: (shard path, offset, length), from the shard's index
    (zarr v3 sharding, index at the end: two little-endian uint64 per inner chunk, then a crc32c)."""
    import json
    from pathlib import Path

    meta = json.loads((Path(store) / name / "zarr.json").read_text())
    shard_shape = meta["chunk_grid"]["configuration"]["chunk_shape"]
    inner = meta["codecs"][0]["configuration"]["chunk_shape"]
    per_axis = [s // i for s, i in zip(shard_shape, inner, strict=True)]
    block = shard_shape[0]
    path = Path(store) / name / "c" / str(index // block)
    path = path.joinpath(*["0"] * (len(shard_shape) - 1))
    position = np.ravel_multi_index((index % block, *[0] * (len(shard_shape) - 1)), per_axis)
    data = path.read_bytes()
    table = np.frombuffer(data[-(16 * int(np.prod(per_axis)) + 4) : -4], dtype="<u8").reshape(-1, 2)
    offset, length = (int(value) for value in table[position])
    return path, offset, length


def flip_byte(store, name: str, index: int) -> None:
    """Damage entry ``index``'s chunk of array ``name`` (its first inner chunk) in the middle."""
    path, offset, length = inner_chunk(store, name, index)
    data = bytearray(path.read_bytes())
    data[offset + length // 2] ^= 0x40
    path.write_bytes(bytes(data))


def run_job(images, annotations, out, **options):
    """The job on 12 images in blocks of 4, one process, unless told otherwise (three blocks);
    ``options`` are the Job's and the StoreSettings' fields."""
    from dataclasses import fields

    from ocr_targets.store import StoreSettings
    from precompute import job

    options = {"jobs": 1, "block": 4, "progress": False, **options}
    settings = {field.name: options.pop(field.name) for field in fields(StoreSettings) if field.name in options}
    return job.run(job.Job(images, annotations, out, settings=StoreSettings(**settings), **options))
