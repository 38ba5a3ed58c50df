"""``ocr-targets info``: what a store holds and how it was made, in words."""

from __future__ import annotations

from ocr_targets.location import Location
from ocr_targets.store import open_store


def info(path: Location) -> list[str]:
    """Parameters, geometry, counts, size on disk, dtypes and provenance of a store."""
    store = open_store(path)
    attrs = store.attrs
    done = int(store.done().sum())
    misplaced = len(store.misplaced())
    size = store.location.disk_usage()
    settings = attrs["settings"]
    lines = [
        f"store        {path}",
        f"entries      {len(store)} ({done} done, {len(store) - done} not done: failed, or not computed yet"
        + (f"; {misplaced} of them hold another image's targets: rerun precompute" if misplaced else "")
        + ")",
        f"writing      {store.writing() or 'no job is writing the store now'}",
        f"shifted      {len(store.shifted())} images where the baseline's keypoint slicing shifted words "
        "(a word point that the resize moved out of the image was dropped; stored as training computed it)",
        f"size on disk {size / 2**20:.1f} MiB "
        + (f"({size / done / 1024:.0f} KiB per image)" if done else "(no entry done yet)"),
        f"stack        {store.settings.stack} (its validation transform and targets)",
        "parameters   " + ", ".join(f"{k}={v}" for k, v in settings["config"].items()),
        f"geometry     {settings['size']}x{settings['size']}: {attrs['geometry']['resize']}; "
        f"{attrs['geometry']['pad']}",
        f"thresh_map   stored as {settings['thresh_dtype']} ({_error(attrs['thresh_tolerance'])})",
        "pixels       "
        + (_image_cost(store.location, done) if store.has_images else "not stored (precompute --with-images)"),
        f"blocks       {settings['block']} images per block: {_count(-(-len(store) // settings['block']), 'block')}, "
        "one object per array each",
        f"made         {attrs['created']}, updated {attrs['updated']}, by ocr-targets {attrs['library_version']} "
        f"(algorithm {settings['algorithm_version']}, store schema {attrs['schema_version']})",
        f"sources      images {attrs['sources']['images']}",
        f"             annotations {attrs['sources']['annotations']}",
        "arrays",
    ]
    for name, (dtype, shape, chunks, shards) in sorted(store.array_layout().items()):
        sharded = f", shards {shards}" if shards else ""
        lines.append(f"  {name:<15}{dtype:<9}shape {shape}, chunks {chunks}{sharded}")
    return lines


def _error(tolerance: float) -> str:
    return "lossless" if tolerance == 0 else f"max error {tolerance:.1e}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _image_cost(store: Location, done: int) -> str:
    size = (store / "images").disk_usage()
    per_image = f" ({size / done / 1024:.0f} KiB per image)" if done else ""
    return f"the transformed images are stored, {size / 2**20:.1f} MiB{per_image}"
