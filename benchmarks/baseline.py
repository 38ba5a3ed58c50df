"""The competition baseline's own loaders and metrics, through its own Hydra configs, as they
are and with the README's YAML blocks (``examples/baseline/``) pasted in.

Runs in an environment with the baseline's pins and its training packages (``make
baseline-env``), given a checkout of the baseline (github AIBootcamp13/upstageailab-ocr-recsys-
competition-ocr-2 at 2467d39); nothing of it is copied here::

    python -m benchmarks.baseline CHECKOUT epochs    # its val and train epochs, both ways (make bench)
    python -m benchmarks.baseline CHECKOUT metrics   # its trainer.validate, both ways (make metrics)

The data are photographed receipts made here (phone-sized JPEGs, 164 words each), laid out as
the baseline's configs expect them under ``dataset_base_path``; the store is made with
``--with-images``, as the README says.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from ocr_targets.store import StoreSettings
from precompute.job import Job, run

from .synthetic import write_photos
from .timing import best_interleaved

BLOCKS = Path(__file__).resolve().parent.parent / "examples" / "baseline"
# configs/... file of the baseline -> the README's block pasted into it, and how
PASTED = {"data/base.yaml": "data.yaml", "dataloaders/default.yaml": "dataloaders.yaml"}
PHONE = ((2340, 1080), (4032, 3024))  # (height, width): a 19.5:9 phone's and a 12 MP photo
WORKERS = 2  # the baseline's loaders get this many workers on this machine (its configs say 8)


def prepare(root: Path, count: int, shapes: tuple[tuple[int, int], ...]) -> None:
    """Receipts where the baseline's configs look for them (the training set is the same photos
    under other names), and the store of the validation set, made as the README says."""
    folder, annotations = write_photos(root / "made", count, seed=7, shape=shapes, quality=85)
    (root / "jsons").mkdir(parents=True)
    folder.rename(root / "images_val_canonical")
    shutil.copyfile(annotations, root / "jsons" / "val.json")
    train = root / "images" / "train"  # the same photos under names of their own, as a training set has
    train.mkdir(parents=True)
    document = json.loads(annotations.read_text())
    document["images"] = {f"train_{name}": entry for name, entry in document["images"].items()}
    for name in document["images"]:
        (train / name).symlink_to(root / "images_val_canonical" / name.removeprefix("train_"))
    (root / "jsons" / "train.json").write_text(json.dumps(document))
    settings = StoreSettings(with_images=True)
    run(Job(root / "images_val_canonical", root / "jsons" / "val.json", root / "val_targets.zarr", jobs=2,
            progress=False, settings=settings))  # fmt: skip


def configs(checkout: Path, into: Path, route: bool) -> Path:
    """A copy of the checkout's configs, with the README's blocks pasted in if ``route``: the data
    block's mappings replace the baseline's, the dataloader block's values are set over its own."""
    from omegaconf import OmegaConf

    target = into / ("route" if route else "baseline")
    shutil.copytree(checkout / "configs", target)
    if route:
        for name, block in PASTED.items():
            path = target / name
            header = path.read_text().splitlines()[0]  # the file's `# @package ...` line, which Hydra reads
            original, pasted = OmegaConf.load(path), OmegaConf.load(BLOCKS / block)
            if "datasets" in pasted:
                for key, value in pasted.pop("datasets").items():
                    original.datasets[key] = value
                for key, value in pasted.items():
                    original[key] = value
            else:
                original = OmegaConf.merge(original, pasted)
            path.write_text(f"{header}\n{OmegaConf.to_yaml(original)}")
    return target


def compose(config_dir: Path, root: Path, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return hydra_compose(
            "train",
            overrides=[
                f"dataset_base_path={root}/",
                "model.encoder.pretrained=false",  # random weights: nothing to download
                "model.component_overrides.encoder.pretrained=false",
                f"dataloaders.train_dataloader.num_workers={WORKERS}",
                *overrides,
            ],
        )


def data_module(cfg):
    from ocr.datasets import get_datasets_by_cfg
    from ocr.lightning_modules.ocr_pl import OCRDataPLModule

    datasets = get_datasets_by_cfg(cfg.datasets, cfg.data)
    return datasets, OCRDataPLModule(dataset=datasets, config=cfg)


def same_batches(a, b) -> bool:
    """Every key of the baseline's batch equal in the route's: dtypes, shapes and values."""
    for key, value in a.items():
        other = b[key]
        if hasattr(value, "dtype"):
            if value.dtype != other.dtype or value.shape != other.shape or not bool((value == other).all()):
                return False
        elif key in ("polygons", "inverse_matrix"):
            flat = [np.asarray(x) for x in (value if key == "inverse_matrix" else sum(value, []))]
            other_flat = [np.asarray(x) for x in (other if key == "inverse_matrix" else sum(other, []))]
            if len(flat) != len(other_flat) or any(
                p.dtype != q.dtype or not np.array_equal(p, q) for p, q in zip(flat, other_flat, strict=True)
            ):
                return False
        elif list(value) != list(other):
            return False
    return True


def epochs(checkout: Path, count: int, passes: int, shapes: tuple[tuple[int, int], ...] = PHONE) -> dict:
    """The baseline's own val_dataloader and train_dataloader epochs, as they are and through the
    README's blocks; first checks that every validation batch is the same both ways."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "datasets"
        prepare(root, count, shapes)
        sizes = sorted({p.stat().st_size for p in (root / "images_val_canonical").iterdir()})
        print(f"{count} photographed receipts, {' and '.join(f'{w}x{h}' for h, w in shapes)} JPEG "
              f"({sizes[0] // 1024}-{sizes[-1] // 1024} KiB), 164 words each")  # fmt: skip
        loaders = {}
        for route in (False, True):
            overrides = [] if route else [f"dataloaders.val_dataloader.num_workers={WORKERS}"]
            cfg = compose(configs(checkout, Path(scratch), route), root, overrides)
            _, module = data_module(cfg)
            loaders[route] = (module.val_dataloader(), module.train_dataloader())
        (baseline_val, baseline_train), (route_val, route_train) = loaders[False], loaders[True]
        equal = all(same_batches(a, b) for a, b in zip(baseline_val, route_val, strict=True))
        print(f"every validation batch equal both ways (keys, dtypes, shapes, values): {equal}")
        if not equal:
            raise SystemExit("the route's validation batches differ from the baseline's")
        seconds = best_interleaved(
            {
                "val: baseline": lambda: sum(1 for _ in baseline_val),
                "val: YAML route": lambda: sum(1 for _ in route_val),
                "train: baseline": lambda: sum(1 for _ in baseline_train),
                "train: YAML route": lambda: sum(1 for _ in route_train),
            },
            passes,
        )
        collate = route_val.collate_fn
        served = collate.last_epoch.served
    val = seconds["val: baseline"] / seconds["val: YAML route"]
    train = seconds["train: baseline"] / seconds["train: YAML route"]
    print(f"{'one epoch through OCRDataPLModule, batch 12':<48}{'s':>8}")
    for label, value in seconds.items():
        print(f"{label:<48}{value:>8.2f}")
    print(f"validation epoch: the YAML route {val:.1f}x the baseline's ({served} of {count} items served)")
    print(f"training epoch (augmented items, fast path): {train:.2f}x")
    return {"val": val, "train": train, "images": count, "val_seconds": seconds["val: YAML route"],
            "shapes": [f"{w}x{h}" for h, w in shapes]}  # fmt: skip


def metrics(checkout: Path, count: int, overrides: list[str]) -> dict:
    """The baseline's ``trainer.validate`` (its DBNet, random weights seeded alike) through both
    configs: every logged metric, side by side."""
    import lightning.pytorch as pl
    from ocr.lightning_modules import get_pl_modules_by_cfg

    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "datasets"
        prepare(root, count, PHONE)
        for route in (False, True):
            loader = [] if route else [f"dataloaders.val_dataloader.num_workers={WORKERS}"]
            cfg = compose(configs(checkout, Path(scratch), route), root, [*loader, *overrides])
            pl.seed_everything(42, workers=True)
            module, data = get_pl_modules_by_cfg(cfg)
            trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                                 enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
            (logged,) = trainer.validate(module, datamodule=data, verbose=False)
            results["YAML route" if route else "baseline"] = {key: float(value) for key, value in logged.items()}
    baseline, route = results["baseline"], results["YAML route"]
    print(f"{'metric':<28}{'baseline':>16}{'YAML route':>16}  equal")
    for key in sorted(baseline.keys() | route.keys()):
        a, b = baseline.get(key, float("nan")), route.get(key, float("nan"))
        print(f"{key:<28}{a:>16.9g}{b:>16.9g}  {a == b}")
    equal = sum(baseline.get(key) == route.get(key) for key in baseline.keys() | route.keys())
    print(f"{equal} of {len(baseline.keys() | route.keys())} metrics equal, exactly")
    return {"equal": equal, "metrics": len(baseline.keys() | route.keys())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("checkout", type=Path, help="a checkout of the competition baseline (2467d39)")
    parser.add_argument("what", choices=["epochs", "metrics"])
    parser.add_argument("--images", type=int, default=96, help="receipts (default: 96 for epochs, 24 for metrics)")
    parser.add_argument("--passes", type=int, default=3, help="timed epochs of each loader (default: 3)")
    parser.add_argument(
        "--shapes", nargs="+", default=[f"{w}x{h}" for h, w in PHONE], metavar="WxH",
        help="photo sizes, taken in turn (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both runs of metrics, e.g. "
                        "model.component_overrides.head.params.postprocess.box_thresh=0.1")  # fmt: skip
    args = parser.parse_intermixed_args(argv)
    if not (args.checkout / "ocr" / "lightning_modules" / "ocr_pl.py").is_file():
        parser.error(f"{args.checkout}: not a checkout of the competition baseline (no ocr/lightning_modules)")
    sys.path.insert(0, str(args.checkout.resolve()))
    if args.what == "epochs":
        shapes = tuple((int(h), int(w)) for w, h in (shape.split("x") for shape in args.shapes))
        figures = epochs(args.checkout, args.images, args.passes, shapes)
    else:
        figures = metrics(args.checkout, args.images if args.images != 96 else 24, args.overrides)
    if args.json:
        args.json.write_text(json.dumps(figures))
    return 0 if args.what == "epochs" or figures["equal"] == figures["metrics"] else 1


if __name__ == "__main__":
    sys.exit(main())
