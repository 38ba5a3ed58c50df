"""Rebuild data/ from the shared MMOCR samples (run by hand, once; nothing else reads ../shared).

    python data/make_sample.py ../shared/data

Copies the images unchanged and converts both annotation formats to the UFO json
that the receipt competition (and this project) uses.
"""

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(shared: Path) -> None:
    images: dict[str, dict] = {}
    icdar = json.loads((shared / "icdar2015_toy" / "textdet_test.json").read_text())
    for entry in sorted(icdar["data_list"], key=lambda e: int(Path(e["img_path"]).stem.split("_")[1])):
        source = Path(entry["img_path"]).name
        name = f"icdar2015_{source}"
        shutil.copyfile(shared / "icdar2015_toy" / "images" / source, HERE / "images" / name)
        words = {}
        for index, instance in enumerate(entry["instances"]):
            flat = instance["polygon"]
            words[f"{index:04d}"] = {
                "points": [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)],
                "transcription": "###" if instance["ignore"] else "",
                "illegibility": bool(instance["ignore"]),
            }
        images[name] = {"img_w": entry["width"], "img_h": entry["height"], "words": words}
    for line in (shared / "wildreceipt_toy" / "data.txt").read_text().splitlines():
        entry = json.loads(line)
        source = Path(entry["file_name"]).name
        name = f"wildreceipt_{source}"
        shutil.copyfile(shared / "wildreceipt_toy" / "images" / source, HERE / "images" / name)
        words = {}
        for index, annotation in enumerate(entry["annotations"]):
            flat = annotation["box"]
            words[f"{index:04d}"] = {
                "points": [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)],
                "transcription": annotation["text"],
                "illegibility": False,
            }
        images[name] = {"img_w": entry["width"], "img_h": entry["height"], "words": words}
    (HERE / "annotations.json").write_text(json.dumps({"images": images}, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
