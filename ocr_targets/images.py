"""Image files: decoding, and the one way the job, the dataset and verify bring a sample
to the validation geometry (the baseline's data path)."""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .config import TargetConfig
from .errors import InputError
from .geometry import Letterbox, quarter_turn, survivors, upright_words
from .location import Location
from .maps import Targets, compute_targets
from .ufo import ImageAnnotation

_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that shows the stored image upright (what the
# baseline's PIL rotations and flips amount to, pixel for pixel).
_TO_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageError(InputError):
    """An image file that is missing or cannot be decoded."""


class MissingImage(ImageError):
    """An image file that is not there: the one problem ``verify`` tells apart, as a sign that
    the images moved since the store was made."""


class UnsafeName(ImageError):
    """An image name that would read a file outside the images folder (``..``, an absolute
    path, a symlink that leaves it): an annotation file is input, not a list of paths to trust."""

    def __init__(self, folder: Location, name: str, why: str) -> None:
        super().__init__(f"{folder}/{name}", f"{why}; not read (only files inside {folder} are)")
        self.folder, self.name, self.why = folder, name, why

    def __reduce__(self) -> tuple:  # pickled from a worker process with its fields
        return type(self), (self.folder, self.name, self.why)


def image_location(images: str | Path | Location, name: str) -> Location:
    """Where image ``name`` of the folder ``images`` is: the one place a name becomes a path, so
    that nothing outside the folder is ever read (UnsafeName). A symlink that stays inside is
    followed. Object storage keys are taken literally: there ``..`` is a key's text, not a parent."""
    folder = Location.of(images)
    if not folder.is_local:
        return folder / name
    if "\0" in name:
        raise UnsafeName(folder, name, "holds a NUL character")
    if name.startswith("/"):
        raise UnsafeName(folder, name, "is an absolute path")
    if _leaves(folder.path, name):
        raise UnsafeName(folder, name, "resolves outside the images folder")
    return folder / name


def _leaves(folder: str, name: str) -> bool:
    """Whether ``folder/name`` resolves outside ``folder``. A plain name that is no symlink cannot
    (one lstat); any other is resolved in full, every link and ``..`` followed."""
    joined = os.path.join(folder, name)
    if "/" not in name and name not in (".", ".."):
        try:
            if not stat.S_ISLNK(os.lstat(joined).st_mode):
                return False
        except FileNotFoundError:
            return False  # nothing there: read, it is "not found"
        except OSError:
            pass  # resolved in full below
    inside = os.path.realpath(folder)
    return os.path.commonpath([inside, os.path.realpath(joined)]) != inside


def read_image_bytes(path: str | Path | Location) -> bytes:
    return read_image_file(path)[0]


def read_image_file(path: str | Path | Location) -> tuple[bytes, tuple[int, int]]:
    """The file's bytes and its (size, mtime in ns) as they were when it was read."""
    try:
        return Location.of(path).read_with_stat()
    except FileNotFoundError:
        raise MissingImage(path, "image file not found") from None
    except IsADirectoryError:
        raise ImageError(path, "is a directory, not an image file") from None
    except OSError as error:
        raise ImageError(path, "cannot read image file", str(error.strerror)) from None


@dataclass(frozen=True)
class Decoded:
    """An image as the baseline's dataset sees it: decoded by PIL, upright, RGB."""

    pixels: np.ndarray | None  # RGB uint8 (H, W, 3), EXIF orientation applied; None if not asked for
    orientation: int  # the EXIF orientation (1 when there is none)
    stored_size: tuple[int, int]  # (width, height) as stored, before the orientation

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the upright image."""
        width, height = self.stored_size
        return (width, height) if quarter_turn(self.orientation) else (height, width)


def decode_image(data: bytes, path: Path | str, pixels: bool = True) -> Decoded:
    """Decode with PIL, apply the EXIF orientation and convert to RGB, as the baseline's dataset does.

    The image is always decoded in full, so a broken file fails here as it would in training;
    ``pixels=False`` skips making the pixel array, which the maps never need.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            stored_size = image.size
            orientation = image.getexif().get(_ORIENTATION_TAG, 1)
            if not isinstance(orientation, int):
                raise ImageError(path, f"EXIF orientation {orientation!r} is not a number")
            image.load()
            array = None
            if pixels:
                upright = image.transpose(_TO_UPRIGHT[orientation]) if orientation in _TO_UPRIGHT else image
                array = np.asarray(upright if upright.mode == "RGB" else upright.convert("RGB"))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file that PIL can read", f"{len(data)} bytes") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageError(path, "cannot decode image", f"{len(data)} bytes; {error}") from None
    return Decoded(array, orientation, stored_size)


@dataclass(frozen=True)
class Sample:
    """One image and its words, brought to the validation geometry."""

    annotation: ImageAnnotation
    data: bytes  # the file's bytes, as hashed
    file_stat: tuple[int, int]  # the file's size and mtime (ns) when it was read
    image: np.ndarray | None  # RGB uint8, upright, original size (None when loaded without pixels)
    orientation: int  # EXIF orientation of the file
    letterbox: Letterbox
    polygons: list[np.ndarray]  # (N, 2) float32 in target coordinates (relative ones for docTR): the words kept
    ignore: list[bool]  # their ignore flags
    dropped_points: int  # word points the resize moved out of the image (later words shifted; rule 7)

    def targets(self, config: TargetConfig, compute=compute_targets) -> Targets:
        size = self.letterbox.size
        return compute((size, size), self.polygons, config, self.ignore)


def load_sample(
    images: str | Path | Location, annotation: ImageAnnotation, size: int, pad: str = "center", pixels: bool = True
) -> Sample:
    """Read, decode and transform one image and its words; ImageError names the file.

    The baseline's data path: words mapped into the upright frame (rule of EXIF
    orientation), clamped into the image, scaled and shifted with it, re-sliced after the
    points the resize moved out of the image are dropped; words that vanish are dropped.
    """
    path = image_location(images, annotation.name)
    data, file_stat = read_image_file(path)
    decoded = decode_image(data, path, pixels)
    letterbox = Letterbox(decoded.size, size, pad)
    moved = letterbox.keypoints(upright_words(annotation.polygons, decoded.orientation, decoded.stored_size))
    kept = [k for k, ok in enumerate(survivors(moved.polygons)) if ok]
    return Sample(
        annotation,
        data,
        file_stat,
        decoded.pixels,
        decoded.orientation,
        letterbox,
        [moved.polygons[k] for k in kept],
        [annotation.ignore[moved.sources[k]] for k in kept],
        moved.dropped,
    )
