import subprocess
import sys
from pathlib import Path

import numpy as np

from ocr_targets import choices

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "numba", "cv2", "zarr", "PIL", "fsspec")


def _imported_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    probe = f"import sys\n{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return eval(done.stdout.strip().splitlines()[-1])


def test_the_command_lines_help_imports_none_of_the_heavy_libraries():
    assert _imported_after("from precompute.cli import build_parser\nbuild_parser().format_help()") == []
    assert _imported_after("from precompute import job") == sorted(HEAVY)  # what a run imports: the probe sees it


def test_the_packages_public_names_are_there_imported_when_first_used():
    assert _imported_after("import ocr_targets") == []
    names = "compute_targets, open_store, TargetConfig, reference_targets, Targets, Entry, StoreError, TargetStore"
    assert "numpy" in _imported_after(f"from ocr_targets import {names}, ALGORITHM_VERSION, __version__")


def test_float16s_step_is_numpys():
    assert choices._FLOAT16_EPS == float(np.finfo(np.float16).eps)
