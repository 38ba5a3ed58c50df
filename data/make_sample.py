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

    def add(folder: str, prefix: str, entry: dict, words: list[tuple[list[float], str, bool]]) -> None:
        """Copy one image as prefix_name and record its words (flat polygon, transcription, illegible)."""
        source = Path(entry.get("img_path") or entry["file_name"]).name
        shutil.copyfile(shared / folder / "images" / source, HERE / "images" / f"{prefix}_{source}")
        images[f"{prefix}_{source}"] = {
            "img_w": entry["width"],
            "img_h": entry["height"],
            "words": {
                f"{index:04d}": {
                    "points": [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)],
                    "transcription": text,
                    "illegibility": illegible,
                }
                for index, (flat, text, illegible) in enumerate(words)
            },
        }

    icdar = json.loads((shared / "icdar2015_toy" / "textdet_test.json").read_text())
    for entry in sorted(icdar["data_list"], key=lambda e: int(Path(e["img_path"]).stem.split("_")[1])):
        words = [(w["polygon"], "###" if w["ignore"] else "", bool(w["ignore"])) for w in entry["instances"]]
        add("icdar2015_toy", "icdar2015", entry, words)
    for line in (shared / "wildreceipt_toy" / "data.txt").read_text().splitlines():
        entry = json.loads(line)
        add("wildreceipt_toy", "wildreceipt", entry, [(w["box"], w["text"], False) for w in entry["annotations"]])
    (HERE / "annotations.json").write_text(json.dumps({"images": images}, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
