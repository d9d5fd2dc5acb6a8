"""decode_image: one decode per file, channels and orientation by content."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from lldif_bench.imageio import ImageDecodeError, decode_image

RNG = np.random.default_rng(0)
COLOUR = RNG.integers(0, 256, (20, 30, 3), np.uint8)  # RGB
GREY = COLOUR[:, :, 0]


def _cv2(ext: str, img: np.ndarray) -> bytes:
    return cv2.imencode(ext, img)[1].tobytes()


def _exif_rotated_jpeg() -> bytes:
    buf, exif = io.BytesIO(), Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(COLOUR).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


@pytest.mark.parametrize("data, shape", [
    (_cv2(".png", COLOUR[:, :, ::-1]), (20, 30, 3)),
    (_cv2(".png", GREY), (20, 30, 1)),
    (_cv2(".jpg", GREY), (20, 30, 1)),
    (_cv2(".png", np.dstack([COLOUR[:, :, ::-1], GREY])), (20, 30, 3)),       # alpha dropped
    (_cv2(".png", COLOUR[:, :, ::-1].astype(np.uint16) * 257), (20, 30, 3)),  # 16 bit -> 8 bit
    (_exif_rotated_jpeg(), (30, 20, 3)),                                     # EXIF orientation applied
])
def test_decode_keeps_channels_and_orientation(data: bytes, shape: tuple) -> None:
    img = decode_image(data)
    assert img.dtype == np.uint8 and img.shape == shape


def test_decode_is_rgb_and_exact_for_png() -> None:
    np.testing.assert_array_equal(decode_image(_cv2(".png", COLOUR[:, :, ::-1])), COLOUR)
    np.testing.assert_array_equal(decode_image(_cv2(".png", COLOUR[:, :, ::-1].astype(np.uint16) * 257)), COLOUR)


@pytest.mark.parametrize("data", [b"", b"not an image", _cv2(".jpg", COLOUR)[:-200]])
def test_undecodable_bytes_raise_with_a_reason(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        decode_image(data, name="x.jpg")
