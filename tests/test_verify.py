import json
import re
import shutil

import cv2
import pytest

from precompute.cli import main
from tests.helpers import flip_byte


def verify(capsys, out, *extra):
    status = main(["verify", str(out), "--jobs", "1", "--quiet", *extra])
    return status, capsys.readouterr().out


def verdict(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(name + " "))


def test_a_fresh_store_verifies(made_store, capsys):
    _, _, out = made_store
    status, output = verify(capsys, out)
    assert status == 0, output
    assert "12 entries checked: 12 match, 0 do not (0 stale), 0 missing, 0 extra: OK" in output
    assert verdict(output, "wildreceipt_1.jpeg").endswith("ok")


ARRAYS = [
    "binary_maps",
    "thresh_map",
    "matrices",
    "image_info",
    "content_hash",
    "image_digest",
    "file_stat",
    "shrunk_offsets",
    "shrunk_coords",
    "word_offsets",
    "word_coords",
    "word_ignore",
]


@pytest.mark.parametrize("array", ARRAYS)
def test_a_flipped_byte_fails_and_names_the_image(made_store, capsys, array):
    _, _, out = made_store
    # wildreceipt_1.jpeg, in the third block with wildreceipt_2.jpeg; its words are never ignored:
    # for that array, icdar2015_img_10.jpg's flags (an all-zero chunk is not written at all)
    index, name = (9, "icdar2015_img_10.jpg") if array == "word_ignore" else (10, "wildreceipt_1.jpeg")
    flip_byte(out, array, index)
    status, output = verify(capsys, out)
    assert status == 1
    assert "corrupt" in verdict(output, name) and "damaged or unreadable" in output
    assert verdict(output, "wildreceipt_2.jpeg").endswith("ok")


@pytest.mark.parametrize("array", ARRAYS)
def test_a_deleted_object_fails_and_names_the_images_of_its_block(made_store, capsys, array):
    _, _, out = made_store
    shard = out / array / "c" / "2"
    shutil.rmtree(shard)  # the block of icdar2015_img_9, img_10, wildreceipt_1, wildreceipt_2
    status, output = verify(capsys, out)
    assert status == 1
    line = verdict(output, "icdar2015_img_10.jpg" if array == "word_ignore" else "wildreceipt_1.jpeg")
    expected = "differs: words" if array == "word_ignore" else f"objects missing: {out}/{array}/c/2/0"
    assert expected in line
    assert verdict(output, "icdar2015_img_1.jpg").endswith("ok")


def test_deleted_done_flags_read_as_not_computed(made_store, capsys):
    _, _, out = made_store
    (out / "done" / "c" / "0").unlink()
    status, output = verify(capsys, out)
    assert status == 1 and "not computed" in verdict(output, "icdar2015_img_1.jpg")


def test_edited_image_and_annotation_are_stale(made_store, capsys):
    images, annotations, out = made_store
    image = cv2.imread(str(images / "icdar2015_img_7.jpg"))
    cv2.imwrite(str(images / "icdar2015_img_7.jpg"), cv2.flip(image, 1))
    document = json.loads(annotations.read_text())
    word = next(iter(document["images"]["wildreceipt_2.jpeg"]["words"].values()))
    word["points"] = [[x + 9, y + 9] for x, y in word["points"]]
    annotations.write_text(json.dumps(document))
    status, output = verify(capsys, out)
    assert status == 1
    for name in ("icdar2015_img_7.jpg", "wildreceipt_2.jpeg"):
        assert "stale: the image or its words changed" in verdict(output, name)
    assert "(2 stale)" in output


def test_missing_and_extra_entries(made_store, capsys, tmp_path):
    images, annotations, out = made_store
    document = json.loads(annotations.read_text())
    document["images"]["new.jpg"] = {"words": {}}
    del document["images"]["icdar2015_img_2.jpg"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(document))
    status, output = verify(capsys, out, "--annotations", str(other))
    assert status == 1
    assert "missing from the store: new.jpg" in output
    assert "in the store but not in the annotations: icdar2015_img_2.jpg" in output
    assert "11 entries checked" in output


def test_sample_is_seeded_and_printed(made_store, capsys):
    _, _, out = made_store
    status, first = verify(capsys, out, "--sample", "4")
    assert status == 0
    seed = re.search(r"4 entries checked \(random sample, seed (\d+)\)", first).group(1)
    _, again = verify(capsys, out, "--sample", "4", "--seed", seed)
    assert first == again


def test_info_says_what_is_in_the_store(made_store, capsys):
    _, _, out = made_store
    assert main(["info", str(out)]) == 0
    output = capsys.readouterr().out
    assert "images       12 (12 done, 0 not computed)" in output
    assert "shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7" in output
    assert "640x640" in output and "stored as float32" in output and "ocr-targets 0.1.0" in output
    assert re.search(
        r"binary_maps\s+uint8\s+shape \(12, 3, 640, 640\), chunks \(1, 3, 640, 640\), shards \(4, 3, 640, 640\)", output
    )
    assert "4 images per block: 3 blocks" in output
    assert re.search(r"size on disk \d+\.\d MiB", output)


def test_show_draws_the_targets(made_store, capsys, tmp_path):
    _, _, out = made_store
    picture = tmp_path / "show.png"
    assert main(["show", str(out), "wildreceipt_1.jpeg", "--out", str(picture)]) == 0
    image = cv2.imread(str(picture))
    assert image.shape == (640, 3 * 640 + 2 * 8, 3)
    image_panel, prob_panel = image[40:, :640], image[40:, 648:1288]
    assert (prob_panel == 255).all(axis=2).mean() > 0.02  # text regions drawn white
    red = (image_panel[..., 2] > 200) & (image_panel[..., 1] < 60) & (image_panel[..., 0] < 60)
    assert red.sum() > 500  # the shrunk polygons
    assert main(["show", str(out), "nope.jpg", "--out", str(picture)]) == 2
    assert "'nope.jpg' is not in the store" in capsys.readouterr().err
