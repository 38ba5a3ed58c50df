"""``ocr-targets info``: what a store holds and how it was made, in words."""

from __future__ import annotations

from ocr_targets.location import Location
from ocr_targets.store import open_store


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
