"""Parity with the baseline's real data path: PIL + albumentations 1.3.1 + its collate.

The store and the UFODataset + StoreCollate batches must hold what training computed,
pixel for pixel, in both padding modes, on photos of every awkward kind.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from ocr_targets import open_store
from ocr_targets.collate import StoreCollate
from ocr_targets.dataset import UFODataset
from ocr_targets.geometry import quarter_turn
from ocr_targets.store import StoreSettings
from precompute import job as batch
from tests.baseline_path import baseline_item, load_words
from tests.conftest import DATA

BOX = [[0, 0], [1, 0], [1, 1], [0, 1]]


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random RGB picture with some sharp edges, so JPEG has real work to do."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 16 + 2, width // 16 + 2, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        cv2.rectangle(image, (x, y), (x + width // 8, y + height // 20), rng.integers(0, 256, 3).tolist(), -1)
    return image


def box(x: float, y: float, w: float, h: float) -> list[list[float]]:
    return [[x + dx * w, y + dy * h] for dx, dy in BOX]


def words(*polygons: list) -> dict:
    return {"words": {f"{i:04d}": {"points": points, "transcription": "w"} for i, points in enumerate(polygons)}}


def scattered(width: int, height: int, count: int, seed: int) -> list[list[list[float]]]:
    """Word boxes all over a (width, height) frame, fractional corners included."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        w, h = rng.uniform(width / 12, width / 4), rng.uniform(height / 40, height / 10)
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        out.append(np.round(box(x, y, w, h), 1).tolist())
    return out


# (name, upright (width, height), EXIF orientation)
SHIFTING = [
    ("phone_1080x2340.jpg", (1080, 2340), 1),
    ("phone_2340x1080.jpg", (2340, 1080), 1),
    ("phone_1440x2960.jpg", (1440, 2960), 1),
    ("phone_1080x2340_exif6.jpg", (1080, 2340), 6),
]
NOT_SHIFTING = [("phone_1170x2532.jpg", (1170, 2532), 1), ("phone_1080x1920.jpg", (1080, 1920), 1)]


def border_words(width: int, height: int, seed: int, cross: bool = True) -> dict:
    """Words all over a (width, height) frame, some across its right and bottom borders (or,
    ``cross=False``, reaching exactly its last column and row, so that they still fit the
    frame), one ending on the last column, with a 5-point word among them."""
    rng = np.random.default_rng(seed)
    polygons = scattered(width, height, 40, seed)
    for k in range(6):
        y, w = rng.uniform(0, height - 80), rng.uniform(140, 300)
        x = width - rng.uniform(30, 120) if cross else width - 1 - w
        polygons.insert(5 * k + 2, box(x, y, w, 50))
        x, h = rng.uniform(0, width - 200), rng.uniform(80, 160)
        y = height - rng.uniform(20, 60) if cross else height - 1 - h
        polygons.insert(5 * k + 4, box(x, y, 180, h))
    polygons.insert(9, box(width - 101, height / 3, 100, 40))  # its right side on x = width - 1
    polygons.insert(12, [[20, 40], [140, 30], [200, 60], [130, 90], [25, 80]])
    return words(*polygons)


def save(path: Path, pixels: np.ndarray, mode: str = "RGB", orientation: int = 1) -> None:
    image = Image.fromarray(pixels)
    if mode == "L":
        image = image.convert("L")
    elif mode == "RGBA":
        alpha = Image.fromarray(np.linspace(0, 255, pixels.shape[1], dtype=np.uint8)[None].repeat(pixels.shape[0], 0))
        image.putalpha(alpha)
    elif mode == "P":
        image = image.quantize(64)
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    image.save(path, exif=exif, **({"quality": 90} if path.suffix == ".jpg" else {}))


def build_cases(root: Path) -> tuple[Path, Path]:
    """The bundled photos plus generated ones: (images directory, UFO annotation file)."""
    images = root / "images"
    shutil.copytree(DATA / "images", images)
    entries = json.loads((DATA / "annotations.json").read_text())["images"]

    def add(name, pixels, annotation, **options):
        save(images / name, pixels, **options)
        entries[name] = annotation

    # A phone photo stored landscape with orientation 6, words drawn on the stored image;
    # one word 3 px high vanishes in the resize, others cross the borders.
    add(
        "phone_4032x3024_exif6.jpg",
        texture(3024, 4032, 1),
        words(*scattered(4032, 3024, 30, 1), box(500, 700, 400, 3), box(-40, 100, 300, 60), box(3900, 2990, 300, 80)),
        orientation=6,
    )
    # EXIF orientations 1 to 8, words drawn on the stored frame, then on the upright one (for 5 to 8
    # some words lie below the stored image's height, so they fit the upright frame only).
    for orientation in range(1, 9):
        stored = scattered(360, 240, 6, orientation) + [box(20, 200, 60, 30)]
        add(f"exif{orientation}_stored.jpg", texture(240, 360, orientation), words(*stored), orientation=orientation)
        upright = (360, 240) if orientation <= 4 else (240, 360)
        drawn = scattered(*upright, 6, 10 + orientation) + [box(30, upright[1] - 40, 60, 30)]
        picture = texture(240, 360, 20 + orientation)
        add(f"exif{orientation}_upright.jpg", picture, words(*drawn), orientation=orientation)
    # An inexact scale (640 / 517), and every degenerate word the collate or the dataset drops.
    add(
        "small_333x517.jpg",
        texture(517, 333, 3),
        words(
            *scattered(333, 517, 10, 3),
            box(-20, 50, 80, 30),  # crosses the left border
            box(280, 90, 90, 30),  # the right
            box(100, -15, 60, 40),  # the top
            box(150, 500, 60, 40),  # the bottom
            box(400, 600, 50, 30),  # wholly outside: clamped onto the corner
            [[40, 300], [120, 300], [120, 300], [120, 330], [40, 330]],  # a repeated point
            [[40, 400], [140, 400], [40, 440], [140, 440]],  # a quad in Z order
            [[10, 10], [50, 50], [90, 90]],  # collinear
            [[200, 200], [260, 210]],  # two points
            [[5.5, 7.5]],  # one point
        ),
    )
    # Rule 7: phone sizes where a point clamped to the last column (row) lands at or past the
    # resized width (height), (w - 1) * s >= round(w * s): albumentations drops it and the
    # baseline's slicing shifts every later word by a point. Words cross the right (bottom)
    # border; one ends exactly on the last column. 1170x2532 and 1080x1920 drop nothing.
    for name, (width, height), orientation in SHIFTING + NOT_SHIFTING:
        stored = (height, width) if quarter_turn(orientation) else (width, height)
        # words drawn on the upright frame; those of the EXIF photo fit only that frame, so they
        # reach its borders without crossing them
        annotation = border_words(width, height, width, cross=orientation == 1)
        add(name, texture(stored[1], stored[0], width + height), annotation, orientation=orientation)
    add("gray.jpg", texture(600, 450, 4), words(*scattered(450, 600, 8, 4)), mode="L")
    add("alpha.png", texture(300, 500, 5), words(*scattered(500, 300, 8, 5)), mode="RGBA")
    add("palette.png", texture(400, 300, 6), words(*scattered(300, 400, 8, 6)), mode="P")
    add("exact_640x400.jpg", texture(400, 640, 7), words(*scattered(640, 400, 8, 7)))
    add("no_words.jpg", texture(200, 300, 8), {"words": {}})
    add("no_words_key.jpg", texture(300, 200, 9), {})
    annotations = root / "annotations.json"
    annotations.write_text(json.dumps({"images": entries}))
    return images, annotations


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> tuple[Path, Path]:
    return build_cases(tmp_path_factory.mktemp("parity"))


@pytest.fixture(scope="module", params=["center", "top-left"])
def parity(request, cases, tmp_path_factory):
    """(pad, images, annotations, store, baseline items by name) for one padding mode."""
    pad = request.param
    images, annotations = cases
    out = tmp_path_factory.mktemp(f"store-{pad}") / "targets.zarr"
    summary = batch.run(batch.Job(images, annotations, out, jobs=2, progress=False, settings=StoreSettings(pad=pad)))
    assert summary.failures == []
    baseline = {name: baseline_item(images, name, polygons, pad) for name, polygons in load_words(annotations).items()}
    return pad, images, annotations, out, baseline


def test_the_cases_exercise_every_rule(parity):
    _, images, annotations, _, baseline = parity
    raw = load_words(annotations)
    assert len(baseline) == 12 + 1 + 16 + len(SHIFTING) + len(NOT_SHIFTING) + 7
    assert len(baseline["small_333x517.jpg"]["polygons"]) < len(raw["small_333x517.jpg"])  # words were dropped
    assert len(baseline["phone_4032x3024_exif6.jpg"]["polygons"]) == len(raw["phone_4032x3024_exif6.jpg"]) - 1
    assert Image.open(images / "palette.png").mode == "P" and Image.open(images / "alpha.png").mode == "RGBA"


def test_the_store_counts_the_images_whose_words_the_baseline_shifted(parity):
    _, _, _, out, baseline = parity
    shifting = {name for name, _, _ in SHIFTING}
    assert {name for name, item in baseline.items() if item["dropped_keypoints"]} == shifting
    store = open_store(out)
    assert {store.filenames[index] for index in store.shifted()} == shifting


def test_store_holds_what_training_computed(parity):
    pad, _, _, out, baseline = parity
    store = open_store(out)
    assert store.pad == pad and sorted(store.filenames) == sorted(baseline)
    differing = []
    for name, expected in baseline.items():
        entry = store[store.index_of(name)]
        for key in ("prob_map", "thresh_map"):
            if not np.array_equal(getattr(entry, key), expected[key]):
                differing.append(f"{name} {key}: {int((getattr(entry, key) != expected[key]).sum())} pixels")
        if not np.array_equal(entry.inverse_matrix, expected["inverse_matrix"]):
            differing.append(f"{name} inverse_matrix: {entry.inverse_matrix.tolist()}")
    assert differing == []


def test_dataset_and_store_collate_batches_equal_the_baseline(parity):
    pad, images, annotations, out, baseline = parity
    dataset = UFODataset(images, annotations, pad=pad)
    collate = StoreCollate(out, dataset)
    loader = torch.utils.data.DataLoader(dataset, batch_size=6, collate_fn=collate)
    seen = 0
    for collated in loader:
        for k, name in enumerate(collated["image_filename"]):
            expected = baseline[name]
            torch.testing.assert_close(collated["images"][k], expected["image"], rtol=0, atol=0)
            np.testing.assert_array_equal(collated["inverse_matrix"][k], expected["inverse_matrix"])
            polygons = collated["polygons"][k]
            assert len(polygons) == len(expected["polygons"]), name
            for ours, theirs in zip(polygons, expected["polygons"], strict=True):
                assert ours.dtype == np.float32 and ours.shape == theirs.shape
                np.testing.assert_array_equal(ours, theirs)
            np.testing.assert_array_equal(collated["prob_maps"][k, 0].numpy(), expected["prob_map"])
            np.testing.assert_array_equal(collated["thresh_maps"][k, 0].numpy(), expected["thresh_map"])
            assert dataset[dataset.filenames.index(name)]["shape"] == expected["shape"]
            seen += 1
    assert seen == len(baseline)


def test_store_collate_serves_the_baselines_items_whatever_numpy_scales_them_in(parity):
    """Under numpy 2 the baseline's float32 keypoints are scaled in float32, not float64: low bits
    of the words differ from the stored ones, never the int32 points the maps are made of."""
    pad, images, annotations, out, _ = parity
    items = [
        {**baseline_item(images, name, words, pad, np.float32), "image_filename": name}
        for name, words in load_words(annotations).items()
    ]
    collate = StoreCollate(out, check=False)
    for start in range(0, len(items), 8):
        collate(items[start : start + 8])
    assert collate.last_epoch[:3] == (len(items), 0, 0)
