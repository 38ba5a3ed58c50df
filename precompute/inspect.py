"""``ocr-targets info`` and ``ocr-targets show``: what is in a store, in words and in a picture."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ocr_targets.images import load_sample
from ocr_targets.location import Location
from ocr_targets.reader import open_store
from ocr_targets.ufo import parse_entry, read_ufo


def info(path: Location) -> list[str]:
    """Parameters, geometry, counts, size on disk, dtypes and provenance of a store."""
    store = open_store(path)
    attrs = store.attrs
    done = int(store.done().sum())
    size = store.location.disk_usage()
    settings = attrs["settings"]
    lines = [
        f"store        {path}",
        f"images       {len(store)} ({done} done, {len(store) - done} not computed)",
        f"shifted      {len(store.shifted())} images where the baseline's keypoint slicing shifted words "
        "(a word point that the resize moved out of the image was dropped; stored as training computed it)",
        f"size on disk {size / 2**20:.1f} MiB ({size / max(done, 1) / 1024:.0f} KiB per image)",
        "parameters   " + ", ".join(f"{k}={v}" for k, v in settings["config"].items()),
        f"geometry     {settings['size']}x{settings['size']}: {attrs['geometry']['resize']}; "
        f"{attrs['geometry']['pad']}",
        f"thresh_map   stored as {settings['thresh_dtype']} (max error {attrs['thresh_tolerance']:.1e})",
        "images       "
        + (_image_cost(store.location, done) if store.has_images else "not stored (precompute --with-images)"),
        f"blocks       {settings['block']} images per block: {-(-len(store) // settings['block'])} blocks, "
        "one object per array each",
        f"made         {attrs['created']}, updated {attrs['updated']}, by ocr-targets {attrs['library_version']} "
        f"(algorithm {settings['algorithm_version']}, store schema {attrs['schema_version']})",
        f"sources      images {attrs['sources']['images']}",
        f"             annotations {attrs['sources']['annotations']}",
        "arrays",
    ]
    for name, array in sorted(store.arrays.items()):
        shards = f", shards {array.shards}" if array.shards else ""
        lines.append(f"  {name:<15}{str(array.dtype):<9}shape {array.shape}, chunks {array.chunks}{shards}")
    return lines


def _image_cost(store: Location, done: int) -> str:
    size = (store / "images").disk_usage()
    return f"stored images, {size / 2**20:.1f} MiB ({size / max(done, 1) / 1024:.0f} KiB per image)"


def show(path: Location, name: str, out: Path, images: Location | None = None) -> None:
    """Write a PNG: the image with its words (green) and shrunk polygons (red), the probability
    map and the threshold map, side by side, at the target geometry. The image is the store's
    own if it holds images, else the source file, decoded and transformed."""
    store = open_store(path)
    entry = store[store.index_of(name)]
    if entry.image is not None:
        image = entry.image
    else:
        sources = store.attrs["sources"]
        images = images or Location.of(sources["images"], store.location.options)
        annotation = parse_entry(name, read_ufo(Location.of(sources["annotations"], store.location.options))[name])
        sample = load_sample(images, annotation, store.size, store.pad)
        image = sample.letterbox.image(sample.image)
    picture = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    cv2.polylines(picture, [p.astype(np.int32) for p in entry.words], True, (0, 200, 0), 1)
    cv2.polylines(picture, entry.shrunk_polygons, True, (0, 0, 255), 1)
    prob = cv2.cvtColor((entry.prob_map * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    low, high = store.config.thresh_min, store.config.thresh_max
    scaled = np.clip((entry.thresh_map - low) / (high - low) * 255, 0, 255).astype(np.uint8)
    thresh = cv2.applyColorMap(scaled, cv2.COLORMAP_VIRIDIS)
    panels = []
    for title, panel in (("image, polygons, shrunk", picture), ("probability map", prob), ("threshold map", thresh)):
        panel = panel.copy()
        cv2.putText(panel, title, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 3, cv2.LINE_AA)
        cv2.putText(panel, title, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(panel)
    gap = np.full((store.size, 8, 3), 255, dtype=np.uint8)
    strip = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    if not cv2.imwrite(str(out), strip):
        raise ValueError(f"{out}: cannot write the picture (is the folder there, and the suffix .png?)")
