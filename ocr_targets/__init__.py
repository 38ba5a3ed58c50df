"""Precomputed DBNet training targets: compute once offline, read by index at train time.

The public names are imported when first used (PEP 562): the command line, which imports
``ocr_targets.choices`` for its help, does not pay for numpy, numba, OpenCV and zarr.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ocr-targets")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

_WHERE = {
    "ALGORITHM_VERSION": ".config",
    "TargetConfig": ".config",
    "Targets": ".maps",
    "compute_targets": ".maps",
    "reference_targets": ".maps",
    "Entry": ".store",
    "StoreError": ".store",
    "TargetStore": ".store",
    "open_store": ".store",
}

__all__ = ["__version__", *sorted(_WHERE)]


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name], __name__), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
