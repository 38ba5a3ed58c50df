import pickle
import struct

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocr_targets.geometry import survivors
from ocr_targets.images import ImageError, MissingImage, decode_image, read_image_bytes
from tests.conftest import FIXTURES
from tests.helpers import examples


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an APP1 Exif segment holding only the Orientation tag."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_exif_orientation_is_applied_as_the_baseline_does():
    image = np.zeros((40, 100, 3), np.uint8)
    image[:, :10] = (255, 0, 0)  # a red band on the left, in RGB
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
    upright = decode_image(jpeg, "a.jpg")
    assert upright.orientation == 1 and upright.stored_size == (100, 40)
    assert upright.pixels.shape == (40, 100, 3) and upright.pixels[20, 5, 0] > 200 and upright.pixels[20, 5, 2] < 60
    rotated = decode_image(with_exif_orientation(jpeg, 6), "b.jpg")  # 6: rotate 90 degrees clockwise to view
    assert rotated.orientation == 6 and rotated.stored_size == (100, 40)
    assert rotated.pixels.shape == (100, 40, 3)
    assert rotated.pixels[5, 20, 0] > 200  # the left band is now at the top


def test_unreadable_images_name_the_file(tmp_path):
    with pytest.raises(ImageError, match=r"broken.jpg: cannot decode image \(512 bytes"):
        decode_image((FIXTURES / "broken.jpg").read_bytes(), FIXTURES / "broken.jpg")
    with pytest.raises(ImageError, match="gone.jpg: image file not found"):
        read_image_bytes(tmp_path / "gone.jpg")
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(ImageError, match="folder.jpg: is a directory, not an image file"):
        read_image_bytes(tmp_path / "folder.jpg")


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.floats(-5, 700, width=32), st.floats(-5, 700, width=32)), max_size=7).map(
            lambda points: np.array(points, dtype=np.float32).reshape(-1, 2)
        ),
        max_size=6,
    )
)
def test_the_word_filter_keeps_what_the_baseline_keeps(words):
    """The baseline dataset's filter, word by word: 3 points or more, at least 1 px wide and
    high, and neither side 0 once rounded."""

    def kept(points):
        if len(points) < 3:
            return False
        spans = points.max(axis=0) - points.min(axis=0)
        rounded = np.rint(points)
        return bool((spans >= 1).all() and (rounded.max(axis=0) > rounded.min(axis=0)).all())

    assert survivors(words) == [kept(points) for points in words]


def test_a_missing_image_is_its_own_type_also_from_a_worker_process(tmp_path):
    with pytest.raises(MissingImage) as error:
        read_image_bytes(tmp_path / "gone.jpg")
    assert str(error.value) == f"{tmp_path / 'gone.jpg'}: image file not found"
    assert isinstance(pickle.loads(pickle.dumps(error.value)), MissingImage)  # as verify's workers send it
    with pytest.raises(ImageError) as error:
        read_image_bytes(tmp_path)
    assert not isinstance(error.value, MissingImage)
