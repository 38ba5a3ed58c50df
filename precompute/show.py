"""``ocr-targets show``: one image's targets in a picture, to check them by eye."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ocr_targets.arrays import MAPS, MapSpec
from ocr_targets.location import Location
from ocr_targets.sources import Sources
from ocr_targets.store import Entry, TargetStore, open_store
from ocr_targets.ufo import parse_entry, read_ufo

from .errors import CommandError

GAP, TITLE = 8, 32  # pixels between panels, and of each panel's title bar
WORD, IGNORED, SHRUNK, HALO = (0, 200, 0), (0, 165, 255), (0, 0, 255), (255, 255, 255)  # BGR: green, orange, red
MASKED = np.array([40, 40, 200], dtype=np.uint8)  # BGR: pixels the mask leaves out of the loss, red


def show(path: Location, image: str, out: Path, images: Location | None = None) -> tuple[int, str]:
    """Write a PNG of four panels at the target geometry; return the entry's index and file name:

    1. the image with its words (green), ignored words (orange: illegible or ``###``, out of
       the loss) and shrunk polygons (red);
    2. the probability map, white where text is, pixels out of the probability mask red;
    3. the threshold map (viridis, from thresh_min to thresh_max);
    4. the threshold mask, white where it is 1.

    ``image`` is a file name as in the annotation file, or an entry's index. The image drawn is
    the store's own if it holds images, else the source file, decoded and transformed."""
    if out.is_dir():
        raise CommandError(f"{out}: --out is a directory; give a file name ending in .png")
    if out.suffix.lower() != ".png":
        raise CommandError(f"{out}: --out is written as PNG; give a file name ending in .png")
    if not out.parent.is_dir():
        raise CommandError(f"{out}: cannot write the picture: the folder {out.parent} does not exist")
    store = open_store(path)
    entry = store[_index(store, image)]
    picture = _image(store, entry, images)
    pixels = store.size if store.settings.pipeline().relative_words else 1
    panels = [("image: words (green), ignored (orange), shrunk (red)", _outlined(picture, entry, pixels))]
    scale = f" {store.config.thresh_min} to {store.config.thresh_max}"  # a float map's colours
    panels += [(spec.panel + ("" if spec.binary else scale), _panel(store, entry, spec)) for spec in MAPS if spec.panel]
    titled = [_titled(title, panel) for title, panel in panels]
    gap = np.full((titled[0].shape[0], GAP, 3), 255, dtype=np.uint8)
    strip = np.concatenate([part for panel in titled for part in (panel, gap)][:-1], axis=1)
    if not cv2.imwrite(str(out), strip):
        raise CommandError(f"{out}: cannot write the picture (is the folder writable?)")
    return entry.index, entry.filename


def _index(store: TargetStore, image: str) -> int:
    """The entry of a file name, or of an index given as digits (a name wins where both exist)."""
    found = store.find(image)
    if found is not None:
        return found
    if image.lstrip("-").isdigit() and -len(store) <= int(image) < len(store):
        return int(image) % len(store)
    examples = ", ".join(store.filenames[:3])
    raise CommandError(
        f"{image}: no image of that name in the store {store.path}, and not an index from 0 to {len(store) - 1} "
        f"(its images are named as in the annotation file: {examples}, ...)"
    )


def _image(store: TargetStore, entry: Entry, images: Location | None) -> np.ndarray:
    if entry.image is not None:
        return entry.image
    sources = Sources.recorded(store, images)
    annotation = parse_entry(entry.filename, read_ufo(sources.annotations)[entry.filename])
    sample = store.settings.pipeline().sample(sources.images, annotation, store.size, store.pad)
    return sample.letterbox.image(sample.image)


def _outlined(image: np.ndarray, entry: Entry, pixels: int) -> np.ndarray:
    """``pixels``: what the stored words are multiplied by to be pixels (the side, where they are relative)."""
    picture = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    for word, ignored in zip(entry.words, entry.ignore, strict=True):
        outline = [(word * pixels).astype(np.int32)]
        cv2.polylines(picture, outline, True, IGNORED if ignored else WORD, 2 if ignored else 1)
    cv2.polylines(picture, entry.shrunk_polygons, True, HALO, 3)  # a light edge: red alone vanishes over dark ink
    cv2.polylines(picture, entry.shrunk_polygons, True, SHRUNK, 1)
    return picture


def _panel(store: TargetStore, entry: Entry, spec: MapSpec) -> np.ndarray:
    """A 0/1 map in gray (red where the map it is masked by is 0); a float map in viridis over
    the threshold range."""
    values = getattr(entry, spec.name)
    if not spec.binary:
        low, high = store.config.thresh_min, store.config.thresh_max
        scaled = np.clip((values - low) / (high - low) * 255, 0, 255).astype(np.uint8)
        return cv2.applyColorMap(scaled, cv2.COLORMAP_VIRIDIS)
    panel = cv2.cvtColor((values * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    if spec.masked_by:
        panel[getattr(entry, spec.masked_by) == 0] = MASKED
    return panel


def _titled(title: str, panel: np.ndarray) -> np.ndarray:
    """The panel under a dark bar with its title, drawn once."""
    bar = np.full((TITLE, panel.shape[1], 3), 32, dtype=np.uint8)
    scale = min(0.55, 0.55 * panel.shape[1] / 640)
    cv2.putText(bar, title, (6, TITLE - 11), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)
