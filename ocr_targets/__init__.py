"""Precomputed DBNet training targets: compute once offline, read by index at train time."""

from .config import ALGORITHM_VERSION, TargetConfig
from .maps import Targets, compute_targets, reference_targets
from .store import Entry, StoreError, TargetStore, open_store

__version__ = "0.1.0"

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
