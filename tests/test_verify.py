import json
import os
import re
import shutil

import cv2
import numpy as np
import pytest

from ocr_targets import open_store
from ocr_targets.location import Location
from ocr_targets.store.writing import StoreLock
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
    assert "12 entries checked: 0 match, 12 do not (0 stale, 12 never computed), 0 missing, 0 extra" in output


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
    assert verdict(output, "wildreceipt_2.jpeg").count("differs:") == 1  # what differs, told in one list
    assert verdict(output, "wildreceipt_2.jpeg").endswith(", words")
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
    assert "entries      12 (12 done, 0 not done: failed, or not computed yet)" in output
    assert "writing      no job is writing the store now" in output
    assert "stored as float32 (lossless)" in output and "pixels       not stored" in output
    assert "shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7" in output
    assert "640x640" in output and "stored as float32" in output and "ocr-targets 0.1.0" in output
    assert re.search(
        r"binary_maps\s+uint8\s+shape \(12, 3, 640, 640\), chunks \(1, 3, 640, 640\), shards \(4, 3, 640, 640\)", output
    )
    assert "4 images per block: 3 blocks" in output
    assert re.search(r"size on disk \d+\.\d MiB", output)


def test_show_draws_the_targets_the_masks_and_the_ignored_words(made_store, capsys, tmp_path):
    _, _, out = made_store
    picture = tmp_path / "show.png"
    assert main(["show", str(out), "icdar2015_img_1.jpg", "--out", str(picture)]) == 0  # 3 of 7 words ignored
    assert capsys.readouterr().out == f"wrote {picture}: entry 0, icdar2015_img_1.jpg\n"
    image = cv2.imread(str(picture))
    assert image.shape == (32 + 640, 4 * 640 + 3 * 8, 3)
    panels = [image[32:, k * 648 : k * 648 + 640] for k in range(4)]
    title = image[:32, :640]
    assert (title == 32).mean() > 0.8 and (title > 200).any()  # a dark bar, its title in white, drawn once

    def colour(panel, bgr):
        return (np.abs(panel.astype(int) - bgr) < 40).all(axis=2).sum()

    entry = open_store(out)[0]
    assert colour(panels[0], (0, 200, 0)) > 100 and colour(panels[0], (0, 0, 255)) > 100  # words, shrunk
    assert colour(panels[0], (0, 165, 255)) > 100  # the ignored words, apart
    assert colour(panels[1], (40, 40, 200)) == (entry.prob_mask == 0).sum()  # what the mask leaves out
    assert (panels[3] == 255).all(axis=2).sum() == entry.thresh_mask.sum()


def test_show_takes_an_index_and_refuses_what_it_cannot_draw_in_one_line(made_store, capsys, tmp_path):
    _, _, out = made_store
    assert main(["show", str(out), "11", "--out", str(tmp_path / "last.png")]) == 0
    assert "entry 11, wildreceipt_2.jpeg" in capsys.readouterr().out
    cases = [
        (["nope.jpg", "--out", str(tmp_path / "x.png")],
         ["nope.jpg: no image of that name", "not an index from 0 to 11", "icdar2015_img_1.jpg"]),
        (["12", "--out", str(tmp_path / "x.png")], ["12: no image of that name"]),
        (["0", "--out", str(tmp_path / "check")], ["check: --out is written as PNG", "ending in .png"]),
        (["0", "--out", str(tmp_path / "x.jpg")], ["x.jpg: --out is written as PNG"]),
        (["0", "--out", str(tmp_path)], ["--out is a directory"]),
    ]  # fmt: skip
    for arguments, fragments in cases:
        assert main(["show", str(out), *arguments]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("ocr-targets show: error: "), err
        for fragment in fragments:
            assert fragment in err, (fragment, err)


def test_info_says_a_job_is_writing_and_counts_in_words(dataset, tmp_path, capsys):
    images, annotations = dataset
    out = tmp_path / "t.zarr"
    assert main(["precompute", "--quiet", "--images", str(images), "--annotations", str(annotations),
                 "--out", str(out), "--thresh-dtype", "uint8"]) == 0  # fmt: skip
    capsys.readouterr()
    lock = StoreLock(Location.of(out))
    try:
        assert main(["info", str(out)]) == 0
    finally:
        lock.release()
    output = capsys.readouterr().out
    assert re.search(rf"writing      process {os.getpid()} on \S+ since ", output), output
    assert "64 images per block: 1 block, one object" in output
    assert re.search(r"stored as uint8 \(max error \d\.\de-0\d\)", output)


def test_verify_pointed_at_other_images_says_so_once(made_store, capsys, tmp_path):
    _, _, out = made_store
    other = tmp_path / "elsewhere"
    other.mkdir()
    status, output = verify(capsys, out, "--images", str(other))
    assert status == 1
    lines = output.splitlines()
    assert lines[0] == "largest absolute difference per map, stored vs recomputed by the reference path:"
    assert not any("cannot recompute" in line for line in lines)  # no line per entry
    assert f"12 entries could not be recomputed: {other / 'icdar2015_img_1.jpg'}: image file not found; " in output
    assert "; and 9 more" in output
    assert (
        f"none of them is in {other}: give the folder of the images with --images DIR "
        f"(the store was made from {out.parent / 'images'})" in output
    )


def test_swapped_images_are_stale_and_verify_says_to_rerun_precompute(made_store, capsys):
    images, annotations, out = made_store
    first, second = images / "icdar2015_img_2.jpg", images / "icdar2015_img_5.jpg"
    data = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(data)
    status, output = verify(capsys, out)
    assert status == 1
    assert (
        "2 stale entries: their image or words changed since precompute (even where the maps still match); "
        f"update them with: ocr-targets precompute --images {images} --annotations {annotations} --out {out} "
        "--block 4\n" in output
    )


def test_shrunk_polygons_stay_visible_over_dark_ink(made_store, tmp_path, monkeypatch):
    _, _, out = made_store
    monkeypatch.setattr("precompute.show._image", lambda store, entry, images: np.zeros((640, 640, 3), np.uint8))
    picture = tmp_path / "show.png"
    assert main(["show", str(out), "wildreceipt_1.jpeg", "--out", str(picture)]) == 0
    panel = cv2.imread(str(picture))[32:, :640]
    red, white = (panel == (0, 0, 255)).all(axis=2), (panel == 255).all(axis=2)
    assert red.sum() > 100 and white.sum() > red.sum()  # each red line on a light edge
