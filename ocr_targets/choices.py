"""The values a store's options can take, their defaults, and what each costs in error: here,
without numpy, OpenCV or zarr, so that the command line builds its options and help from them
at once, and StoreSettings takes the same defaults."""

from __future__ import annotations

from .config import TargetConfig

PAD_MODES = ("center", "top-left")  # where the resized image sits in the square, the default first
NO_PAD = "none"  # the paddleocr stack's: its Resize stretches the image to the square
THRESH_DTYPES = ("float32", "float16", "uint8")  # the threshold map as stored, lossless (the default) first
DEFAULT_BLOCK = 64  # images per block: one object per array and one task
DEFAULT_SIZE = 640  # the side of the square targets: the baseline's
_FLOAT16_EPS = 2.0**-10  # numpy.finfo(numpy.float16).eps


def thresh_tolerance(dtype: str, config: TargetConfig) -> float:
    """The largest absolute error that storing the threshold map as ``dtype`` adds."""
    if dtype == "float32":
        return 0.0  # the map is float32: stored as it is
    if dtype == "float16":
        return _FLOAT16_EPS * config.thresh_max / 2 + 1e-6  # half a float16 step below 1
    return (config.thresh_max - config.thresh_min) / 510 + 1e-6  # half of one of 255 steps
