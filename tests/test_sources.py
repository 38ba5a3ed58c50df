"""Where a dataset's sources are: one place (ocr_targets.sources) for the job, verify, the
staleness check and both datasets."""

import shlex

from ocr_targets.dataset import StoreDataset, UFODataset
from ocr_targets.sources import Sources
from ocr_targets.store import open_store
from precompute.cli import main


def test_the_recorded_sources_are_reached_with_the_stores_storage_options(made_store):
    images, annotations, out = made_store
    store = open_store(out, storage_options={"auto_mkdir": True})
    sources = Sources.recorded(store)
    assert (sources.images.url, sources.annotations.url) == (str(images), str(annotations))
    assert sources.images.options == sources.annotations.options == {"auto_mkdir": True}
    moved = Sources.recorded(store, images=images.parent)  # one given instead, with the same options
    assert moved.images.url == str(images.parent) and moved.images.options == {"auto_mkdir": True}
    assert moved.annotations == sources.annotations


def test_a_datasets_sources_given_as_urls_stay_urls(made_store):
    images, annotations, out = made_store
    dataset = UFODataset(f"file://{images}", f"file://{annotations}")
    assert dataset.annotations_path == f"file://{annotations}"  # not the Path "file:/..."
    assert dataset.filenames == open_store(out).filenames
    assert dataset.sources.precompute(open_store(out)) == (
        f"ocr-targets precompute --images file://{images} --annotations file://{annotations} --out {out} --block 4"
    )


def test_the_command_that_updates_a_store_repeats_its_options_and_is_accepted_as_printed(store_with_images, capsys):
    """A rerun with other settings is refused, so the fix a check prints carries the store's own."""
    images, annotations, out = store_with_images
    store = open_store(out)
    command = Sources.recorded(store).precompute(store)
    assert command.endswith(f"--out {out} --with-images")
    assert Sources.recorded(store).precompute(store, size=320).endswith("--size 320 --with-images --overwrite")
    assert main(shlex.split(command)[1:] + ["--quiet"]) == 0
    assert "12 images: 0 computed, 12 reused" in capsys.readouterr().out


def test_a_store_datasets_sources_are_the_recorded_ones_unless_given(store_with_images):
    images, annotations, out = store_with_images
    assert StoreDataset(out).sources == Sources.of(images, annotations)
    elsewhere = StoreDataset(out, image_path=f"file://{images}")
    assert elsewhere.image_path == f"file://{images}" and elsewhere.sources.annotations.url == str(annotations)


def test_an_images_digest_is_read_anew_only_when_its_stat_changed(made_store):
    images, annotations, out = made_store
    store = open_store(out)
    sources = Sources.recorded(store)
    stats, digests = store.image_files()
    name = store.filenames[0]
    assert sources.current_digest(name, stats[0], b"recorded") == b"recorded"  # same stat: not read
    assert sources.current_digest(name, stats[0] + 1, b"recorded") == digests[0] == sources.image_digest(name)
    assert sources.current_digest("../outside.jpg", stats[0], b"recorded") == b""
    (images / name).unlink()
    assert sources.current_digest(name, stats[0], b"recorded") == b"" and not sources.has_image(name)
