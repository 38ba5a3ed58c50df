"""The README's uv route, checked against the baseline's own lock: what ``uv add`` changes.

Copies the baseline's ``pyproject.toml`` and ``uv.lock`` (from its checkout) and this project's
tracked files into a scratch project, makes the README's two edits (Python 3.11; ocr-targets
added from the checkout inside the project, not as a workspace member), locks without making
an environment, and compares the locks: a package the baseline locks at a version it no longer
gets has moved (its Python 3.10-only variants may go: the project now needs 3.11). Exit 1 if
one moved. Needs ``uv`` on the PATH and the package index; no environment is downloaded::

    python -m benchmarks.uv_route CHECKOUT        # make check-uv BASELINE=CHECKOUT
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADD = ["uv", "add", "--no-sync", "--no-workspace", "ocr-targets[torch] @ ./ocr-targets"]  # the README's line


def locked(lock: Path) -> dict[str, set[str]]:
    """Package name -> the versions a uv lock holds of it (several where markers fork)."""
    versions: dict[str, set[str]] = {}
    for package in tomllib.loads(lock.read_text())["package"]:
        versions.setdefault(package["name"], set()).add(package.get("version", ""))
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.uv_route", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("checkout", type=Path, help="a checkout of the competition baseline (its uv project)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        for name in ("pyproject.toml", "uv.lock"):
            shutil.copyfile(args.checkout / name, project / name)
        pyproject = project / "pyproject.toml"
        pyproject.write_text(re.sub(r'requires-python = "[^"]*"', 'requires-python = ">=3.11"', pyproject.read_text()))
        tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        for name in filter(None, tracked.decode().split("\0")):
            (project / "ocr-targets" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, project / "ocr-targets" / name)
        print("$", " ".join(ADD[:-1]), f'"{ADD[-1]}"')
        subprocess.run(ADD, cwd=project, check=True)
        before, after = locked(args.checkout / "uv.lock"), locked(project / "uv.lock")
    moved = {name: (before[name], after[name]) for name in before.keys() & after.keys() if after[name] - before[name]}
    print(f"added: {', '.join(sorted(after.keys() - before.keys()))}")
    print(f"gone (Python 3.10 only): {', '.join(sorted(before.keys() - after.keys())) or 'none'}")
    for name, (old, new) in sorted(moved.items()):
        print(f"moved: {name} {', '.join(sorted(old))} -> {', '.join(sorted(new))}")
    print(f"{len(moved)} locked versions moved")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
