"""Precomputed DBNet training targets: compute once offline, read by index at train time."""

from importlib.metadata import PackageNotFoundError, version

from .config import ALGORITHM_VERSION, TargetConfig
from .maps import Targets, compute_targets, reference_targets
from .store import Entry, StoreError, TargetStore, open_store

try:
    __version__ = version("ocr-targets")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ALGORITHM_VERSION",
    "Entry",
    "StoreError",
    "TargetStore",
    "TargetConfig",
    "Targets",
    "__version__",
    "compute_targets",
    "open_store",
    "reference_targets",
]
