"""--with-images, StoreDataset, and the example validation loop."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from ocr_targets.collate import StoreCollate
from ocr_targets.dataset import StoreDataset, UFODataset, expand_batch
from ocr_targets.store import StoreError
from precompute.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "validation_loop.py"


def test_store_dataset_serves_the_items_of_the_ufo_dataset(store_with_images):
    images, annotations, out = store_with_images
    stored, decoded = StoreDataset(out), UFODataset(images, annotations)
    assert len(stored) == len(decoded) == 12
    for index in range(len(decoded)):
        a, b = stored[index], decoded[index]
        assert list(a) == list(b)
        torch.testing.assert_close(a["image"], b["image"], rtol=0, atol=0)
        for key in ("image_filename", "image_path", "shape", "raw_size", "orientation", "ignore", "index"):
            assert a[key] == b[key], key
        np.testing.assert_array_equal(a["inverse_matrix"], b["inverse_matrix"])
        assert len(a["polygons"]) == len(b["polygons"])
        assert all(
            np.array_equal(p, q) and p.dtype == q.dtype for p, q in zip(a["polygons"], b["polygons"], strict=True)
        )


def test_store_dataset_reads_no_image_file(store_with_images, tmp_path):
    images, annotations, out = store_with_images
    images.rename(tmp_path / "elsewhere")
    data = StoreDataset(out)
    collate = StoreCollate(out, check=False)
    batch = collate([data[i] for i in range(3)])
    assert batch["images"].shape == (3, 3, 640, 640) and collate.this_epoch.served == 3


def test_a_compact_batch_expanded_is_the_drop_in_batch_bit_for_bit(store_with_images):
    images, annotations, out = store_with_images
    regular, compact = StoreCollate(out), StoreCollate(out, compact=True)
    loaders = [
        torch.utils.data.DataLoader(StoreDataset(out), batch_size=5, collate_fn=regular),
        torch.utils.data.DataLoader(
            StoreDataset(out, compact=True), batch_size=5, num_workers=2, collate_fn=compact,
            multiprocessing_context="fork",
        ),
    ]  # fmt: skip
    shifted = [{**item, "polygons": [p + 2 for p in item["polygons"]]} for item in UFODataset(images, annotations)]
    for expected, small in zip(*loaders, strict=True):
        assert small["images"].dtype == small["prob_maps"].dtype == torch.uint8
        assert small["images"].nbytes * 4 == expected["images"].nbytes
        expanded = expand_batch(small)
        assert list(expanded) == list(expected)
        for key, value in expected.items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == expanded[key].dtype and torch.equal(value, expanded[key]), key
    # items the store does not serve (augmented) are computed into the compact batch as well
    on_the_fly, compact_on_the_fly = regular(shifted[:4]), expand_batch(compact(shifted[:4]))
    for key in ("prob_maps", "thresh_maps", "prob_masks", "thresh_masks"):
        assert torch.equal(on_the_fly[key], compact_on_the_fly[key]), key


def test_a_store_without_images_says_how_to_get_them(made_store):
    images, annotations, out = made_store
    remake = f"ocr-targets precompute --images {images} --annotations {annotations} --out {out} --with-images --block 4"
    with pytest.raises(StoreError, match=f"holds no images; make it with them: {remake} --overwrite$"):
        StoreDataset(out)


def test_verify_info_and_show_know_the_images(store_with_images, capsys, tmp_path):
    images, annotations, out = store_with_images
    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 0
    assert main(["info", str(out)]) == 0
    assert "pixels       the transformed images are stored, " in capsys.readouterr().out
    picture = tmp_path / "show.png"
    assert main(["show", str(out), "icdar2015_img_1.jpg", "--out", str(picture), "--images", str(tmp_path)]) == 0

    array = zarr.open_array(out / "images", mode="r+")
    image = array[4]
    image[100:110, 100:110] = 255 - image[100:110, 100:110]  # a valid chunk of the wrong picture
    array[4] = image
    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 1
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("icdar2015_img_5.jpg "))
    assert line.endswith("differs: image")


def test_the_example_loop_gives_one_loss_three_ways(store_with_images):
    spec = importlib.util.spec_from_file_location("validation_loop", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.run_three_ways(store_with_images[2], batch_size=5)
    assert list(results) == ["on the fly", "store", "store with images"]
    losses = [loss for loss, _ in results.values()]
    assert losses[0] > 0 and losses[0] == losses[1] == losses[2]
