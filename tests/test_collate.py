import json
import logging
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import ocr_targets.sources as sources_module
from ocr_targets import ALGORITHM_VERSION, compute_targets, open_store
from ocr_targets.collate import OnTheFlyCollate, StoreCollate
from ocr_targets.dataset import UFODataset
from ocr_targets.location import Location
from ocr_targets.store import StoreError
from ocr_targets.store.writing import StoreLock
from ocr_targets.tally import Cause, Counts, Ended
from precompute import job as batch
from precompute.cli import main


def assert_same_batch(stored, on_the_fly):
    assert list(stored) == list(on_the_fly)
    assert stored["image_filename"] == on_the_fly["image_filename"]
    torch.testing.assert_close(stored["images"], on_the_fly["images"], rtol=0, atol=0)
    for a, b in zip(stored["inverse_matrix"], on_the_fly["inverse_matrix"], strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(stored["polygons"], on_the_fly["polygons"], strict=True):
        assert len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    for key, dtype in (("prob_maps", torch.float32), ("prob_masks", torch.uint8), ("thresh_masks", torch.uint8)):
        assert stored[key].dtype == dtype
        torch.testing.assert_close(stored[key], on_the_fly[key], rtol=0, atol=0)
    assert stored["thresh_maps"].dtype == torch.float32
    torch.testing.assert_close(stored["thresh_maps"], on_the_fly["thresh_maps"], rtol=0, atol=0)


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_batches_equal_the_on_the_fly_collate(made_store, context):
    images, annotations, out = made_store
    data = UFODataset(images, annotations)
    collate = StoreCollate(open_store(out), data)  # opened in the parent, read in the workers
    stored = torch.utils.data.DataLoader(
        data, batch_size=5, num_workers=2, collate_fn=collate, multiprocessing_context=context,
        persistent_workers=True,
    )  # fmt: skip
    reference = torch.utils.data.DataLoader(data, batch_size=5, collate_fn=OnTheFlyCollate())
    for _ in range(2):  # persistent workers serve a second epoch
        batches = list(stored)
        assert len(batches) == 3
        for a, b in zip(batches, reference, strict=True):
            assert_same_batch(a, b)
    first = batches[0]
    assert first["images"].shape == (5, 3, 640, 640) and first["prob_maps"].shape == (5, 1, 640, 640)
    assert first["thresh_maps"].shape == (5, 1, 640, 640) and first["prob_masks"].shape == (5, 640, 640)


def test_inference_mode_skips_the_maps(made_store):
    images, annotations, out = made_store
    data = UFODataset(images, annotations)
    collated = StoreCollate(out, data, inference_mode=True)([data[0], data[1]])
    assert list(collated) == [
        "images",
        "image_filename",
        "image_path",
        "inverse_matrix",
        "raw_size",
        "orientation",
        "canonical_size",
    ]


@pytest.mark.parametrize("pad, top", [("center", 80), ("top-left", 0)])
def test_dataset_items_match_the_baseline_contract(made_store, pad, top):
    images, annotations, _ = made_store
    item = UFODataset(images, annotations, pad=pad)[10]  # wildreceipt_1.jpeg, 1600x1200 -> 640x480
    assert item["image"].shape == (3, 640, 640) and item["image"].dtype == torch.float32
    assert item["image_filename"] == "wildreceipt_1.jpeg" and item["shape"] == (1600, 1200)
    np.testing.assert_array_equal(item["inverse_matrix"], [[2.5, 0, 0], [0, 2.5, -2.5 * top], [0, 0, 1]])
    assert item["polygons"][0].shape == (1, 4, 2) and item["polygons"][0].dtype == np.float32
    # Padding rows are zeros before normalisation: (0 - mean) / std.
    padding = -np.array([0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    for row in (top + 480, 639) if top == 0 else (0, top - 1, top + 480, 639):
        np.testing.assert_allclose(item["image"][:, row, 0].numpy(), padding, rtol=1e-6)
    reference = np.asarray(Image.open(images / "wildreceipt_1.jpeg").convert("RGB"))
    expected = cv2.resize(reference, (640, 480), interpolation=cv2.INTER_LINEAR)[0, 0] / 255
    np.testing.assert_allclose(
        item["image"][:, top, 0].numpy() * [0.229, 0.224, 0.225] + [0.485, 0.456, 0.406], expected, atol=1e-6
    )


def test_stale_image_is_caught_once_with_the_fix(made_store):
    images, annotations, out = made_store
    image = cv2.imread(str(images / "icdar2015_img_4.jpg"))
    cv2.imwrite(str(images / "icdar2015_img_4.jpg"), 255 - image)
    with pytest.raises(
        StoreError,
        match=r"of its 12 entries, 1 is stale \(image or words changed since precompute: icdar2015_img_4.jpg\); "
        r"bring it up to date with: ocr-targets precompute --images",
    ):
        StoreCollate(out, UFODataset(images, annotations))


def test_changed_words_or_order_or_parameters_are_caught(made_store):
    images, annotations, out = made_store
    document = json.loads(annotations.read_text())
    word = next(iter(document["images"]["wildreceipt_2.jpeg"]["words"].values()))
    word["points"][0] = [word["points"][0][0] + 5, word["points"][0][1]]
    annotations.write_text(json.dumps(document))
    with pytest.raises(StoreError, match="stale .*wildreceipt_2.jpeg"):
        StoreCollate(out, UFODataset(images, annotations))

    document["images"] = dict(reversed(list(document["images"].items())))
    annotations.write_text(json.dumps(document))
    with pytest.raises(StoreError, match="the same images in another order"):
        StoreCollate(out, UFODataset(images, annotations))

    del document["images"]["wildreceipt_1.jpeg"]
    annotations.write_text(json.dumps(document))
    with pytest.raises(StoreError, match=r"0 images not in the store .*1 not in the dataset .*wildreceipt_1.jpeg"):
        StoreCollate(out, UFODataset(images, annotations))

    annotations.write_text(json.dumps(json.loads((out.parent / "annotations.json").read_text())))
    with pytest.raises(StoreError, match="the collate asks for"):
        StoreCollate(out, UFODataset(images, out.parent / "annotations.json"), shrink_ratio=0.5)
    with pytest.raises(StoreError, match=r"uses 512; remake it with: .* --size 512 --block 4 --overwrite$"):
        StoreCollate(out, UFODataset(images, out.parent / "annotations.json", size=512))
    with pytest.raises(StoreError, match="pads top-left; remake it with: .* --pad top-left --block 4 --overwrite$"):
        StoreCollate(out, UFODataset(images, out.parent / "annotations.json", pad="top-left"))


def test_a_store_of_the_previous_algorithm_is_refused_then_recomputed(dataset, tmp_path, monkeypatch):
    images, annotations = dataset
    out = tmp_path / "old.zarr"
    with monkeypatch.context() as old:
        old.setattr("ocr_targets.hashing.ALGORITHM_VERSION", "1")
        old.setattr("ocr_targets.store._settings.ALGORITHM_VERSION", "1")
        batch.run(batch.Job(images, annotations, out, jobs=1, progress=False))
    with pytest.raises(StoreError, match="of its 12 entries, 12 are stale.*ocr-targets precompute --images"):
        StoreCollate(out, UFODataset(images, annotations))
    summary = batch.run(batch.Job(images, annotations, out, jobs=1, progress=False))
    assert (summary.computed, summary.reused) == (12, 0)
    assert open_store(out).attrs["settings"]["algorithm_version"] == ALGORITHM_VERSION
    StoreCollate(out, UFODataset(images, annotations))


def test_mean_and_std_are_the_datasets_own(made_store):
    images, annotations, _ = made_store
    plain = UFODataset(images, annotations, mean=(0, 0, 0), std=(1, 1, 1))[10]["image"]
    assert plain.min() == 0 and plain.max() <= 1 and plain.max() > 0.5
    with pytest.raises(ValueError, match="mean and std need 3 values"):
        UFODataset(images, annotations, mean=(0.5,), std=(0.5,))


def test_an_items_index_counts_only_where_it_names_the_items_image(made_store):
    """A training set's items carry indices of their own: such an item is found by its name,
    and one whose image the store does not hold is computed, not taken for a stored one."""
    images, annotations, out = made_store
    data = UFODataset(images, annotations)
    collate = StoreCollate(out, data)
    collate([dict(data[0], index=99), dict(data[1], index=5)])
    assert collate.this_epoch[:3] == (2, 0, 0)
    collate([dict(data[2], index=3, image_filename="train_0001.jpg")])
    assert collate.this_epoch[:3] == (2, 0, 1)


def baseline_items(data: UFODataset, indices) -> list[dict]:
    """Items as the baseline's own dataset makes them: no ``index``, no ``ignore``."""
    return [{k: v for k, v in data[i].items() if k not in ("index", "ignore")} for i in indices]


def test_a_drop_in_serves_the_baselines_items_by_name(made_store):
    images, annotations, out = made_store
    # As the baseline's config names it, DBCollateFN's parameters and all: checked against the recorded sources.
    collate = StoreCollate(store=str(out), shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7)
    data = UFODataset(images, annotations)
    items = baseline_items(data, [11, 3, 10])
    batch = collate(items)
    assert collate.this_epoch[:3] == (3, 0, 0)
    on_the_fly = OnTheFlyCollate(compute=compute_targets)(items)
    for key in ("prob_maps", "thresh_maps"):
        torch.testing.assert_close(batch[key], on_the_fly[key], rtol=0, atol=0)
    assert batch["image_path"] == [str(images / name) for name in batch["image_filename"]]
    assert batch["canonical_size"][2] == (1600, 1200) and batch["orientation"] == [1, 1, 1]


def test_items_that_are_not_the_stored_sample_are_computed_and_reported(made_store, caplog):
    images, annotations, out = made_store
    collate = StoreCollate(out)
    data = UFODataset(images, annotations)
    stored, flipped, small, other = baseline_items(data, [10, 11, 4, 2])
    flipped["image"] = flipped["image"].flip(-1)  # a training item: flipped left to right, words with it
    flipped["polygons"] = [np.stack([639 - p[..., 0], p[..., 1]], axis=-1) for p in flipped["polygons"]]
    small["image"] = small["image"][:, :512, :512]  # another size
    small["polygons"] = [p * 0.8 for p in small["polygons"]]
    other["image_filename"] = "train_0001.jpg"  # an image the store does not hold
    batch = collate([stored, flipped, other])
    assert collate.this_epoch == (1, 1, 1, data.filenames.index(flipped["image_filename"]), 1)
    expected = OnTheFlyCollate(compute=compute_targets)([stored, flipped, other])
    torch.testing.assert_close(batch["thresh_maps"], expected["thresh_maps"], rtol=0, atol=0)
    torch.testing.assert_close(batch["prob_maps"], expected["prob_maps"], rtol=0, atol=0)
    assert not caplog.records
    collate([small])
    assert collate.this_epoch[:3] == (1, 2, 1)
    collate([stored])  # seen before: a new epoch, and one warning on the last
    assert collate.last_epoch[:3] == (1, 2, 1) and collate.this_epoch[:3] == (1, 0, 0)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.message.startswith(
        f"StoreCollate({out}): 2 of the epoch's 3 items of images the store holds were computed on the fly"
    )
    assert f"(the first: {flipped['image_filename']}: its words differ from the stored ones" in record.message
    assert f"`ocr-targets verify {out}` names the stale entries" in record.message


def test_float_words_that_truncate_to_the_stored_points_are_served(made_store):
    """numpy 2 scales float32 keypoints in float32: low bits differ from the stored words, the maps do not."""
    images, annotations, out = made_store
    collate = StoreCollate(out, check=False)
    (item,) = baseline_items(UFODataset(images, annotations), [3])
    item["polygons"] = [np.nextafter(p, np.floor(p) + 0.5).astype(np.float32) for p in item["polygons"]]
    collate([item])
    assert collate.this_epoch[:3] == (1, 0, 0)


@pytest.mark.parametrize(("option", "cause"), [("--pad top-left", "another padding"), ("--size 320", "image size")])
def test_a_store_of_other_geometry_is_named_with_its_fix_at_the_epochs_end(made_store, tmp_path, option, cause, caplog):
    images, annotations, _ = made_store
    out = tmp_path / "other.zarr"
    assert main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                 *option.split(), "--quiet", "--jobs", "1"]) == 0  # fmt: skip
    collate = StoreCollate(out, check=False)
    data = UFODataset(images, annotations)  # centered, 640
    for start in range(0, 12, 4):
        collate(baseline_items(data, range(start, start + 4)))
    # every entry seen: the epoch is over; a square image pads the same either way
    assert collate.last_epoch[:3] == ((1, 11, 0) if "pad" in option else (0, 12, 0))
    (record,) = caplog.records
    assert cause in record.message and f"--out {out}" in record.message
    fix = "--pad center --overwrite" if "pad" in option else "--size 640 --overwrite"  # the dataset's size
    assert fix in record.message


def test_items_that_are_not_square_are_not_told_to_remake_the_store(made_store):
    collate = StoreCollate(made_store[2], check=False)
    said = collate._report(Ended(Counts(0, 12, 0, 3, Cause.SIZE), (480, 640)))
    assert said.endswith(
        f"(the first: {collate.store.filenames[3]}: the item's image size differs from the store's); its image is "
        "480x640, not square: give the collate the validation transform's items"
    )
    assert "--size" not in said


def test_counts_of_dataloader_workers_reach_the_main_process(made_store, capfd):
    images, annotations, out = made_store
    data = UFODataset(images, annotations)
    collate = StoreCollate(out, data)
    items = baseline_items(data, range(12))
    items[5]["polygons"] = [p + 7 for p in items[5]["polygons"]]
    # spawned: a worker's logging is the default one (a forked worker's would be pytest's)
    loader = torch.utils.data.DataLoader(
        items, batch_size=4, num_workers=2, collate_fn=collate, multiprocessing_context="spawn"
    )
    for _ in loader:
        pass
    assert collate.last_epoch == (11, 1, 0, 5, 1)
    assert "1 of the epoch's 12 items of images the store holds were computed" in capfd.readouterr().err


def test_a_store_whose_sources_are_gone_needs_a_dataset_or_no_check(made_store, tmp_path):
    images, annotations, out = made_store
    moved = tmp_path / "moved"
    images.rename(moved)
    with pytest.raises(StoreError, match="the sources it was made from are not here .*check=False"):
        StoreCollate(out)
    StoreCollate(out, UFODataset(moved, annotations))
    collate = StoreCollate(out, check=False)
    assert collate([baseline_items(UFODataset(moved, annotations), [5])[0]])["prob_maps"].shape == (1, 1, 640, 640)
    assert collate.this_epoch[0] == 1
    with pytest.raises(TypeError, match="store is a path, a URL or a TargetStore"):
        StoreCollate(UFODataset(moved, annotations), out)


def test_a_store_being_written_is_refused_until_the_job_ends(made_store):
    images, annotations, out = made_store
    lock = StoreLock(Location.of(out))
    with pytest.raises(StoreError, match=rf"a precompute job is writing this store \(process {os.getpid()} on "):
        StoreCollate(out, UFODataset(images, annotations))
    lock.release()
    assert StoreCollate(out, UFODataset(images, annotations)).this_epoch == (0, 0, 0, -1, 0)


def test_fast_on_the_fly_collate_equals_the_reference_one(made_store):
    images, annotations, _ = made_store
    data = UFODataset(images, annotations)
    items = [data[i] for i in (0, 5, 11)]
    assert_same_batch(OnTheFlyCollate(compute=compute_targets)(items), OnTheFlyCollate()(items))


def test_the_staleness_check_hashes_only_files_whose_stat_changed(made_store, monkeypatch, capsys):
    images, annotations, out = made_store
    reads = []
    real = sources_module.read_image_bytes
    monkeypatch.setattr(sources_module, "read_image_bytes", lambda path: reads.append(path.name) or real(path))
    StoreCollate(out, UFODataset(images, annotations))
    assert reads == []  # a stat per image, no file read
    touched = images / "icdar2015_img_6.jpg"
    recorded = touched.stat()
    os.utime(touched, ns=(recorded.st_atime_ns, recorded.st_mtime_ns + 10**9))
    StoreCollate(out, UFODataset(images, annotations))  # same bytes: re-hashed, found fresh
    assert reads == ["icdar2015_img_6.jpg"]

    # The fingerprint's limit: new bytes of the same size, the recorded mtime put back. verify hashes in full.
    data = bytearray(touched.read_bytes())
    data[-100] ^= 1
    touched.write_bytes(bytes(data))
    os.utime(touched, ns=(recorded.st_atime_ns, recorded.st_mtime_ns))
    StoreCollate(out, UFODataset(images, annotations))
    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 1
    assert "icdar2015_img_6.jpg" in next(line for line in capsys.readouterr().out.splitlines() if "stale" in line)


def test_an_unchanged_annotation_file_is_not_parsed_by_the_check(made_store, monkeypatch):
    images, annotations, out = made_store
    import ocr_targets.staleness as staleness

    def no_parse(*args, **kwargs):
        raise AssertionError("the annotation file was parsed")

    monkeypatch.setattr(staleness, "read_annotations", no_parse)
    monkeypatch.setattr(staleness, "current_hashes", no_parse)
    StoreCollate(out)  # the recorded sources: the file's bytes as recorded, a stat per image
    (images / "icdar2015_img_3.jpg").write_bytes((images / "icdar2015_img_4.jpg").read_bytes())
    with pytest.raises(StoreError, match=r"1 is stale \(image or words changed since precompute: icdar2015_img_3"):
        StoreCollate(out)
    (images / "icdar2015_img_3.jpg").unlink()
    with pytest.raises(StoreError, match=r"1 is stale .*icdar2015_img_3"):
        StoreCollate(out)


def test_a_changed_annotation_file_is_checked_word_by_word(made_store):
    images, annotations, out = made_store
    document = json.loads(annotations.read_text())
    annotations.write_text(json.dumps(document, indent=2))  # other bytes, the same words: fresh
    StoreCollate(out)
    StoreCollate(out, UFODataset(images, annotations))


def test_a_store_with_a_failed_image_names_the_ways_out_not_a_rerun_alone(dataset, tmp_path):
    """A rerun fails the same image again: the message says to mend or drop it, or not to check."""
    images, annotations = dataset
    out = tmp_path / "targets.zarr"
    (images / "icdar2015_img_2.jpg").write_bytes(b"not a jpeg")
    assert main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                 "--jobs", "1", "--quiet"]) == 1  # fmt: skip
    with pytest.raises(StoreError) as raised:
        StoreCollate(out)
    message = str(raised.value)
    assert "1 was never completed (image failed, or run interrupted: icdar2015_img_2.jpg)" in message
    assert f"{out}.failures.json says why) fails again until it is mended or dropped" in message
    assert "or pass check=False to serve the other entries" in message
    collate = StoreCollate(out, check=False)
    data = UFODataset(images, annotations)
    collate([data[0]])
    assert collate.this_epoch[:3] == (1, 0, 0)
