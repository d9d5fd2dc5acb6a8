"""Image decoding and encoding for datasets: by content, EXIF-aware, channel-explicit, atomic.

Arrays are ``uint8`` ``(H, W, C)`` in **RGB** order with ``C`` = 1 (grey) or 3 (colour). Grey files
stay one channel, so callers decide explicitly what colour ops mean for them. Files are decoded by
their bytes, not their names (a PNG named ``.jpg`` works); OpenCV applies EXIF orientation.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

cv2.setNumThreads(1)  # we parallelise across processes/batches; per-call threads only add overhead

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class ImageDecodeError(ValueError):
    """The bytes are not a decodable image (empty, truncated, or not an image)."""


def is_image_name(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def decode_image(data: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Decode image bytes to uint8 RGB ``(H, W, 3)`` or grey ``(H, W, 1)``.

    Raises :class:`ImageDecodeError` with a reason for empty, truncated or unknown data.
    """
    if len(data) == 0:
        raise ImageDecodeError(f"{name}: empty file (0 bytes)")
    buf = np.frombuffer(data, dtype=np.uint8)
    # One decode: IMREAD_ANYCOLOR keeps a grey file one channel and a colour file three, converts
    # other depths to 8 bit, drops alpha, and (unlike IMREAD_UNCHANGED) applies EXIF orientation.
    img = cv2.imdecode(buf, cv2.IMREAD_ANYCOLOR)
    if img is None:
        raise ImageDecodeError(f"{name}: not a decodable image ({len(data)} bytes)")
    if _looks_truncated(data):
        raise ImageDecodeError(f"{name}: truncated JPEG (no end-of-image marker)")
    if img.ndim == 2:
        return img[:, :, None]
    if img.shape[2] == 1:
        return img
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _looks_truncated(data: bytes) -> bool:
    # libjpeg pads a truncated JPEG with grey and only warns; catch it by the missing EOI marker.
    return data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:]


def read_image(path: str | os.PathLike) -> np.ndarray:
    p = Path(path)
    return decode_image(p.read_bytes(), name=str(p))


def image_format_of(path: str | os.PathLike) -> str:
    """``'jpg'`` or ``'png'`` (etc.) from the file name's suffix, lower-case, ``jpeg`` → ``jpg``."""
    ext = Path(path).suffix.lower().lstrip(".")
    return "jpg" if ext in ("jpg", "jpeg") else ext


def encode_image(img: np.ndarray, fmt: str, *, jpeg_quality: int = 95) -> bytes:
    """Encode uint8 RGB/grey ``(H, W, C)`` to bytes in ``fmt`` (``jpg``/``png``/…)."""
    if img.dtype != np.uint8:
        raise TypeError(f"encode_image needs uint8, got {img.dtype}")
    arr = img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    fmt = "jpg" if fmt in ("jpg", "jpeg") else fmt
    params: list[int] = []
    if fmt == "jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif fmt == "png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, enc = cv2.imencode("." + fmt, arr, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode an image as {fmt!r}")
    return enc.tobytes()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    A reader (or a resumed run) never sees a half-written file under the final name.
    """
    with atomic_writer(path) as f:
        f.write(data)


def write_at(path: str | os.PathLike, offset: int, data: bytes) -> None:
    """Write ``data`` at byte ``offset`` of ``path`` (created if absent, never truncated): items of
    one shared work file, written by several processes at offsets of their own."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def read_at(path: str | os.PathLike, offset: int, size: int) -> bytes | None:
    """``size`` bytes at ``offset`` of ``path``; None when the file is absent or shorter."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(size)
    except FileNotFoundError:
        return None
    return data if len(data) == size else None


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through piece by piece (a large file need not be held in
    memory); it appears under its name, whole, when the block ends, and not at all on an error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_image(path: str | os.PathLike, img: np.ndarray, *, fmt: str | None = None,
                jpeg_quality: int = 95) -> None:
    atomic_write_bytes(path, encode_image(img, fmt or image_format_of(path), jpeg_quality=jpeg_quality))
