"""A plain PyTorch validation loop, run three ways over the same images:

1. on the fly: ``UFODataset`` + ``OnTheFlyCollate`` (the baseline's way: decode, resize,
   compute every target every epoch);
2. store: ``UFODataset`` + ``StoreCollate`` (decode and resize, targets read from the store);
3. store with images: ``StoreDataset`` + ``StoreCollate`` (nothing decoded, nothing computed).

The model is a tiny DB-style head on random (seeded) weights; the loss is DB's: binary
cross-entropy on the probability map under its mask, plus 10 x L1 on the threshold map
under its mask. The three losses are equal: the store holds what on-the-fly computes.

    python examples/validation_loop.py --store data/targets.zarr   # make precompute first
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ocr_targets import open_store
from ocr_targets.collate import OnTheFlyCollate, StoreCollate
from ocr_targets.dataset import StoreDataset, UFODataset


class TinyDB(nn.Module):
    """Two convolutions at a quarter of the resolution, upsampled: a probability and a threshold map."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 3, padding=1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = F.interpolate(self.body(images), scale_factor=4, mode="bilinear", align_corners=False)
        return torch.sigmoid(maps[:, :1]), torch.sigmoid(maps[:, 1:])


def db_loss(prob: torch.Tensor, thresh: torch.Tensor, batch: dict) -> torch.Tensor:
    """BCE on the probability map under ``prob_masks`` + 10 x L1 on the threshold map under ``thresh_masks``."""
    prob_mask, thresh_mask = batch["prob_masks"].float(), batch["thresh_masks"].float()
    bce = F.binary_cross_entropy(prob[:, 0], batch["prob_maps"][:, 0], reduction="none")
    l1 = (thresh[:, 0] - batch["thresh_maps"][:, 0]).abs()
    prob_loss = (bce * prob_mask).sum() / prob_mask.sum().clamp(min=1)
    return prob_loss + 10 * (l1 * thresh_mask).sum() / thresh_mask.sum().clamp(min=1)


@torch.no_grad()
def validate(model: nn.Module, loader: torch.utils.data.DataLoader) -> float:
    """The mean loss over the loader's batches."""
    losses = [db_loss(*model(batch["images"]), batch).item() for batch in loader]
    return sum(losses) / len(losses)


def run_three_ways(
    store: Path, images: Path | None = None, annotations: Path | None = None, workers: int = 0, batch_size: int = 16
) -> dict[str, tuple[float, float]]:
    """way -> (mean loss, seconds) for each way the store allows."""
    targets = open_store(store)
    images = images or Path(targets.attrs["sources"]["images"])
    annotations = annotations or Path(targets.attrs["sources"]["annotations"])
    torch.manual_seed(0)
    model = TinyDB().eval()
    dataset = UFODataset(images, annotations, size=targets.size, pad=targets.pad)
    ways = {
        "on the fly": (dataset, OnTheFlyCollate(targets.config)),
        "store": (dataset, StoreCollate(targets, dataset)),
    }
    if targets.has_images:
        ways["store with images"] = (StoreDataset(targets), StoreCollate(targets, dataset))
    results = {}
    for way, (data, collate) in ways.items():
        loader = torch.utils.data.DataLoader(data, batch_size=batch_size, num_workers=workers, collate_fn=collate)
        start = time.perf_counter()
        loss = validate(model, loader)
        results[way] = (loss, time.perf_counter() - start)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="a store made by ocr-targets precompute")
    parser.add_argument("--images", type=Path, help="image directory (default: the store's recorded source)")
    parser.add_argument("--annotations", type=Path, help="UFO json (default: the store's recorded source)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default: 2)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    results = run_three_ways(args.store, args.images, args.annotations, args.workers, args.batch_size)
    if "store with images" not in results:
        print("(the store holds no images: make it with --with-images for the third way)")
    baseline = results["on the fly"][1]
    for way, (loss, seconds) in results.items():
        print(f"{way:<20} loss {loss:.6f}  {seconds:6.2f} s  {baseline / seconds:5.1f}x")


if __name__ == "__main__":
    main()
