"""Hostile names, stale handles, the user's files, live locks: each row of issue 27's table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ocr_targets import open_store
from ocr_targets.dataset import UFODataset
from ocr_targets.images import ImageError, UnsafeName, image_location
from ocr_targets.store import StoreError
from precompute.cli import main
from tests.helpers import run_job

HOSTILE = ["../secret.jpg", "sub/../../secret.jpg", "link.jpg", "sub/link.jpg", "SECRET_ABSOLUTE"]


def add_images(annotations: Path, names: list[str], words_of: str = "icdar2015_img_1.jpg") -> None:
    """Append entries ``names`` to the annotation file, with the words of image ``words_of``."""
    document = json.loads(annotations.read_text())
    for name in names:
        document["images"][name] = document["images"][words_of]
    annotations.write_text(json.dumps(document))


@pytest.fixture
def hostile(dataset, tmp_path):
    """The sample plus five names that lead outside its folder to a readable image (``secret.jpg``),
    and one symlink that stays inside: (images, annotations, secret, names)."""
    images, annotations = dataset
    secret = tmp_path / "secret.jpg"
    shutil.copyfile(images / "icdar2015_img_1.jpg", secret)
    (images / "sub").mkdir()
    (images / "link.jpg").symlink_to(secret)
    (images / "sub" / "link.jpg").symlink_to("../../secret.jpg")
    (images / "inside.jpg").symlink_to(images / "icdar2015_img_2.jpg")
    names = [name.replace("SECRET_ABSOLUTE", str(secret)) for name in HOSTILE]
    add_images(annotations, [*names, "inside.jpg"])
    return images, annotations, secret, names


def test_names_outside_the_images_folder_fail_and_the_rest_is_stored(hostile, tmp_path):
    images, annotations, secret, names = hostile
    out = tmp_path / "t.zarr"
    summary = run_job(images, annotations, out, with_images=True)
    failed = {failure.image: failure for failure in summary.failures}
    assert sorted(failed) == sorted(names)
    for name in names:
        assert failed[name].stage == "image" and f"{images}/{name}: " in failed[name].message
        assert "not read (only files inside" in failed[name].message
    assert summary.computed == 13  # the 12 images and the symlink that stays inside
    store = open_store(out)
    assert int(store.done().sum()) == 13
    for name in names:
        with pytest.raises(StoreError, match="never completed"):
            store[name]  # noqa: B018
    assert (store["inside.jpg"].image == store["icdar2015_img_2.jpg"].image).all()


@pytest.mark.parametrize(
    ("name", "why"),
    [("../secret.jpg", "resolves outside"), ("sub/../../secret.jpg", "resolves outside"),
     ("link.jpg", "resolves outside"), ("sub/link.jpg", "resolves outside"), ("/etc/hostname", "absolute path"),
     ("a\0b.jpg", "NUL character")],
)  # fmt: skip
def test_image_location_refuses_every_way_out(hostile, name, why):
    images = hostile[0]
    with pytest.raises(UnsafeName, match=why) as refused:
        image_location(images, name)
    assert (refused.value.name, refused.value.folder.path) == (name, str(images))


def test_image_location_keeps_names_inside_and_object_keys_literal(hostile):
    images = hostile[0]
    assert image_location(images, "inside.jpg").path == f"{images}/inside.jpg"
    assert image_location(images, "sub/../icdar2015_img_1.jpg").path == f"{images}/sub/../icdar2015_img_1.jpg"
    assert image_location(images, "gone.jpg").path == f"{images}/gone.jpg"  # then "not found", as before
    assert image_location("s3://bucket/images", "../x.jpg").url == "s3://bucket/images/../x.jpg"


def test_verify_show_and_the_datasets_refuse_a_link_that_now_leads_outside(dataset, tmp_path, capsys):
    """A store made while a symlink stayed inside; the link then points out of the folder: every
    reader of image files refuses it, in one line, and reads nothing there."""
    images, annotations = dataset
    secret = tmp_path / "secret.jpg"
    shutil.copyfile(images / "icdar2015_img_3.jpg", secret)
    (images / "link.jpg").symlink_to(images / "icdar2015_img_1.jpg")
    add_images(annotations, ["link.jpg"])
    out = tmp_path / "t.zarr"
    assert run_job(images, annotations, out).failures == []
    (images / "link.jpg").unlink()
    (images / "link.jpg").symlink_to(secret)

    assert main(["verify", str(out), "--jobs", "1", "--quiet"]) == 1
    output = capsys.readouterr().out
    assert f"1 entries could not be recomputed: {images}/link.jpg: resolves outside the images folder" in output
    assert main(["show", str(out), "link.jpg", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{images}/link.jpg: resolves outside the images folder" in err[0], err
    dataset_items = UFODataset(images, annotations)
    with pytest.raises(ImageError, match="resolves outside the images folder"):
        dataset_items[dataset_items.filenames.index("link.jpg")]
    with pytest.raises(StoreError, match=r"1 is stale \(image or words changed since precompute: link.jpg\)"):
        from ocr_targets.collate import StoreCollate

        StoreCollate(out)
