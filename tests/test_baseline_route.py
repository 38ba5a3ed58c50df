"""The YAML-only route into the competition baseline (README "Train with it"): the blocks of
``examples/baseline/`` instantiated with Hydra as the baseline's ``get_datasets_by_cfg`` and
``OCRDataPLModule`` do, its ``Subset``, its metric's ``anns``; and whole batches read at once."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ocr_targets.collate import OnTheFlyCollate, StoreCollate
from ocr_targets.dataset import StoreDataset, UFODataset
from precompute.cli import main

from .test_collate import assert_same_batch, baseline_items

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = ROOT / "examples" / "baseline"


def test_the_readmes_blocks_are_the_ones_the_bench_measures():
    readme = (ROOT / "README.md").read_text()
    for name in ("data.yaml", "dataloaders.yaml"):
        assert f"```yaml\n{(BLOCKS / name).read_text()}```" in readme, name


def route(out: Path) -> tuple:
    """The blocks as the baseline's code instantiates them: the validation set wrapped in a
    Subset (``val_num_samples``), the collate made per loader with ``inference_mode`` set."""
    config = OmegaConf.merge(OmegaConf.load(BLOCKS / "data.yaml"), {"dataset_base_path": f"{out.parent}/"})
    config.collate_fn.store = str(out)
    for name in ("val_dataset", "test_dataset"):
        config.datasets[name].store = str(out)
    loader = OmegaConf.load(BLOCKS / "dataloaders.yaml").val_dataloader
    validation = torch.utils.data.Subset(instantiate(config.datasets.val_dataset), range(10))
    collate = instantiate(config.collate_fn)
    collate.inference_mode = False
    batches = torch.utils.data.DataLoader(validation, batch_size=4, collate_fn=collate, **loader)
    return validation, collate, batches


def test_the_yaml_route_gives_the_baselines_batches_with_no_geometry(store_with_images):
    images, annotations, out = store_with_images
    validation, collate, batches = route(out)
    reference = torch.utils.data.DataLoader(
        torch.utils.data.Subset(UFODataset(images, annotations), range(10)), batch_size=4,
        collate_fn=OnTheFlyCollate(),
    )  # fmt: skip
    for a, b in zip(batches, reference, strict=True):
        assert_same_batch(a, b)
    assert collate.this_epoch[:3] == (10, 0, 0)


def test_the_route_datasets_have_what_the_baselines_metric_reads(store_with_images):
    """``OCRPLModule`` scores against ``val_dataset.anns[filename]`` (through the Subset) and falls
    back on ``image_path / filename``; its test epoch takes names from ``anns``' order."""
    images, annotations, out = store_with_images
    validation, _, _ = route(out)
    data = validation.dataset
    assert data.image_path == images
    document = json.loads(annotations.read_text())["images"]
    assert list(data.anns) == list(document) == data.filenames
    for name, entry in document.items():
        words = [np.array([np.round(w["points"])], dtype=np.int32) for w in entry["words"].values() if w["points"]]
        stored = data.anns[name]
        assert len(stored) == len(words) and all(
            a.dtype == np.int32 and a.shape == (1, len(b[0]), 2) and np.array_equal(a, b)
            for a, b in zip(stored, words, strict=True)
        )


def test_a_batch_read_at_once_is_handed_on_without_a_copy(store_with_images):
    images, annotations, out = store_with_images
    data, collate = StoreDataset(out), StoreCollate(out)
    items = data.__getitems__([5, 0, 7])
    batch = collate(items)
    assert batch["images"] is items.images and batch["prob_maps"] is items.targets["prob_maps"]
    assert collate.this_epoch[:3] == (3, 0, 0)
    one_by_one = collate([data[5], data[0], data[7]])  # items apart: matched and read again, the same batch
    assert_same_batch(batch, one_by_one)
    assert collate.last_epoch[:3] == collate.this_epoch[:3] == (3, 0, 0)  # entries seen again: a new epoch


def test_a_batch_read_at_once_from_another_store_is_matched(store_with_images, tmp_path):
    images, annotations, out = store_with_images
    other = tmp_path / "other.zarr"
    assert main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(other),
                 "--with-images", "--quiet", "--jobs", "1"]) == 0  # fmt: skip
    items = StoreDataset(other).__getitems__([1, 2])
    collate = StoreCollate(out)
    batch = collate(items)
    assert batch["prob_maps"] is not items.targets["prob_maps"]
    assert collate.this_epoch[:3] == (2, 0, 0)
    assert torch.equal(batch["thresh_maps"], items.targets["thresh_maps"])


@pytest.mark.parametrize("workers", [0, 2])
def test_store_dataset_batches_in_workers_equal_the_reference(store_with_images, workers):
    images, annotations, out = store_with_images
    collate = StoreCollate(out)
    loader = torch.utils.data.DataLoader(
        StoreDataset(out), batch_size=5, num_workers=workers, collate_fn=collate,
        persistent_workers=workers > 0,
    )  # fmt: skip
    reference = torch.utils.data.DataLoader(UFODataset(images, annotations), batch_size=5, collate_fn=OnTheFlyCollate())
    for _ in range(2):
        for a, b in zip(loader, reference, strict=True):
            assert_same_batch(a, b)
    assert collate.last_epoch[:3] == (12, 0, 0)


def test_top_left_items_are_served_whatever_their_inverse_matrix(made_store, tmp_path):
    """The baseline at 2467d39 keeps the centered crop box in its inverse matrix under top-left
    padding, its later lineage follows the padding: the maps are the same, so both are served,
    each batch with the item's own matrix."""
    images, annotations, _ = made_store
    out = tmp_path / "top-left.zarr"
    assert main(["precompute", "--images", str(images), "--annotations", str(annotations), "--out", str(out),
                 "--pad", "top-left", "--quiet", "--jobs", "1"]) == 0  # fmt: skip
    top_left, centered = UFODataset(images, annotations, pad="top-left"), UFODataset(images, annotations)
    collate = StoreCollate(out, check=False)
    for start in range(0, 12, 4):
        items = baseline_items(top_left, range(start, start + 4))
        for item, index in zip(items, range(start, start + 4), strict=True):
            item["inverse_matrix"] = centered[index]["inverse_matrix"]  # 2467d39's formula
        batch = collate(items)
        assert all(np.array_equal(a, b["inverse_matrix"]) for a, b in zip(batch["inverse_matrix"], items, strict=True))
    assert collate.last_epoch[:3] == (12, 0, 0)


def test_an_object_storage_images_folder_stays_a_url(store_with_images):
    _, _, out = store_with_images
    data = StoreDataset(out, image_path="s3://bucket/val/images")
    assert data.image_path == "s3://bucket/val/images"
    assert data[0]["image_path"] == f"s3://bucket/val/images/{data.filenames[0]}"
