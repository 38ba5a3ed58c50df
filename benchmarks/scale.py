"""The scale section of `make bench`: objects on S3 (a moto server on 127.0.0.1) and a store
laid out for a million images, of which a few blocks are written."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

from ocr_targets import open_store
from ocr_targets.location import Location
from ocr_targets.store import StoreSettings
from ocr_targets.store.writing import StoreWriter
from ocr_targets.ufo import read_ufo
from precompute.job import Job, run

from .s3 import local_s3, requests_to_the_server

MILLION = 1_000_000


def on_s3(images: Path, annotations: Path) -> Iterator[str]:
    """Precomputes to a fresh S3 bucket (a moto server): the objects written in blocks of 64,
    and what a batch of 16 costs to read from a store of many shards (blocks of 4)."""
    with local_s3() as fs:
        fs.mkdir("bench")
        summary = run(Job(images, annotations, "s3://bench/val.zarr", jobs=1, progress=False))
        fs.invalidate_cache()
        objects = len(fs.find("bench/val.zarr"))
        yield (f"objects written to S3 for {summary.images} images in one block of 64: {objects} "
               f"({objects / summary.images:.2f} per image; the layout before blocks wrote 8 per image)")  # fmt: skip
        small = StoreSettings(block=4)
        run(Job(images, annotations, "s3://bench/small-blocks.zarr", jobs=1, progress=False, settings=small))
        store = open_store("s3://bench/small-blocks.zarr")
        batch = random.Random(0).sample(range(summary.images), 16)
        out = [store.read_maps(0) for _ in batch]
        for label in ("first (fetches the shard indexes)", "again (the indexes kept)"):
            with requests_to_the_server() as seen:
                start = time.perf_counter()
                store.read_maps_into(batch, out)
                elapsed = time.perf_counter() - start
            yield f"  a batch of 16 in blocks of 4, {label}: {len(seen)} requests, {elapsed * 1e3:.0f} ms"


def million_entries(images: Path, annotations: Path, out: Path) -> Iterator[str]:
    """Lay a store out for 1,000,000 images (64 of them written), then time what a reader does."""
    run(Job(images, annotations, out, jobs=1, progress=False))
    names = list(read_ufo(annotations))
    names += [f"unseen/{index:07d}.jpg" for index in range(MILLION - len(names))]
    writer = StoreWriter.open(Location.of(out), names, StoreSettings(), sources={}, overwrite=False, version="bench")
    try:
        writer.arrange([], [], [])
    finally:
        writer.close()
    start = time.perf_counter()
    store = open_store(out)
    opened = time.perf_counter() - start
    batch = random.Random(0).sample(range(64), 16)
    out_maps = [{name: maps.copy() for name, maps in store.read_maps(0).items()} for _ in batch]
    store = open_store(out)  # afresh: the read above opened its arrays
    start = time.perf_counter()
    store.read_maps_into(batch, out_maps)  # the first read opens the arrays
    first = time.perf_counter() - start
    start = time.perf_counter()
    store.read_maps_into(batch, out_maps)
    again = time.perf_counter() - start
    start = time.perf_counter()
    done = int(store.done().sum())
    flags = time.perf_counter() - start
    size = Location.of(out).disk_usage() / 2**20
    yield f"a store laid out for {len(store):,} images ({done} written, {size:.0f} MiB):"
    yield f"  open_store: {opened * 1e3:.0f} ms (2 objects: metadata and the file list of {len(store):,} names)"
    yield f"  a batch of 16: first {first * 1e3:.1f} ms (opens the arrays), then {again * 1e3:.1f} ms"
    yield f"  every done flag ({len(store):,}): {flags * 1e3:.0f} ms"
