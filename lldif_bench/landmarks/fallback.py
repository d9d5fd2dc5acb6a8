"""Faces without landmarks: fill detector misses with a mean shape aligned to the crop.

Policy: a miss gets the mean of this dataset's successful detections, each first normalised to
its own crop (x / W, y / H), scaled back to the missed image's size — status
``fallback-mean-shape``, confidence 0. With no successful detection at all, the canonical iBUG-68
mean shape is placed in the whole-crop box instead (status ``fallback-canonical-shape``).

The canonical shape is the initial (mean) shape of dlib's 68-point predictor, which was trained on
the iBUG 300-W faces; it is stored as package data (``ibug68_mean_shape.csv``, x/y in units of the
detector box) and :func:`read_dlib_initial_shape` re-derives it from the model file.
"""

from __future__ import annotations

import csv
import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from lldif_bench.landmarks.geometry import DEFAULT_INSET, NUM_POINTS, crop_box, from_box

log = logging.getLogger(__name__)

CANONICAL_CSV = Path(__file__).with_name("ibug68_mean_shape.csv")

# Statuses whose points came from a face (a detector hit, a whole-crop prediction, ground truth).
MEASURED = ("detected", "whole-crop", "ground-truth")
MISSED = "missed"
FALLBACK_MEAN = "fallback-mean-shape"
FALLBACK_CANONICAL = "fallback-canonical-shape"


def _read_dlib_int(buf: bytes, pos: int) -> tuple[int, int]:
    """dlib's integer serialisation: a control byte (low nibble = byte count, bit 7 = sign),
    then the magnitude little-endian."""
    ctrl = buf[pos]
    n = ctrl & 0x0F
    value = int.from_bytes(buf[pos + 1:pos + 1 + n], "little")
    return (-value if ctrl & 0x80 else value), pos + 1 + n


def read_dlib_initial_shape(model_path: str | Path) -> np.ndarray:
    """The ``initial_shape`` of a dlib ``shape_predictor`` file as ``(K, 2)`` in box units.

    The file starts with ``version``, then the initial shape as a column matrix (``-rows``,
    ``-cols``, then each float as ``mantissa``, ``exponent`` integers: value = m·2^e).
    """
    with open(model_path, "rb") as fh:
        buf = fh.read(64 * 1024)
    version, pos = _read_dlib_int(buf, 0)
    rows, pos = _read_dlib_int(buf, pos)
    cols, pos = _read_dlib_int(buf, pos)
    if version != 1 or rows >= 0 or cols != -1:
        raise ValueError(f"{model_path}: not a dlib shape_predictor file (version {version}, "
                         f"matrix {rows}×{cols})")
    values = []
    for _ in range(-rows):
        mantissa, pos = _read_dlib_int(buf, pos)
        exponent, pos = _read_dlib_int(buf, pos)
        values.append(mantissa * 2.0 ** exponent)
    return np.asarray(values, dtype=np.float64).reshape(-1, 2)


def write_canonical_csv(shape: np.ndarray, path: str | Path = CANONICAL_CSV) -> None:
    """Store a ``(68, 2)`` box-unit shape as the package's canonical mean shape."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["x", "y"])
        writer.writerows([[f"{x:.9g}", f"{y:.9g}"] for x, y in shape])


@lru_cache(maxsize=1)
def canonical_mean_shape() -> np.ndarray:
    """The canonical iBUG-68 mean shape, ``(68, 2)`` in detector-box units (read-only copy)."""
    with open(CANONICAL_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    shape = np.array([[float(r["x"]), float(r["y"])] for r in rows], dtype=np.float64)
    if shape.shape != (NUM_POINTS, 2):
        raise ValueError(f"{CANONICAL_CSV} holds {shape.shape}, expected (68, 2)")
    shape.flags.writeable = False
    return shape


def canonical_shape_in_crop(height: int, width: int, inset: float = DEFAULT_INSET) -> np.ndarray:
    """The canonical mean shape placed in the whole-crop box of an ``height × width`` image."""
    return from_box(canonical_mean_shape(), crop_box(height, width, inset)).astype(np.float32)


def dataset_mean_shape(points: np.ndarray, sizes: np.ndarray, status: list[str]) -> np.ndarray | None:
    """Mean of the measured faces, each normalised to its crop: ``(68, 2)`` in crop units, or None."""
    keep = np.array([s in MEASURED for s in status], dtype=bool) & np.isfinite(points).all(axis=(1, 2))
    if not keep.any():
        return None
    hw = sizes[keep].astype(np.float64)
    unit = points[keep].astype(np.float64) / np.stack([hw[:, 1], hw[:, 0]], axis=1)[:, None, :]
    return unit.mean(axis=0)


def fill_misses(points: np.ndarray, confidence: np.ndarray, status: list[str], sizes: np.ndarray,
                inset: float = DEFAULT_INSET) -> dict[str, int]:
    """Replace every ``missed`` row in place with the dataset mean shape (or the canonical shape).

    ``sizes``: ``(N, 2)`` image ``(H, W)``. Returns the counts of each fallback used.
    """
    missed = [i for i, s in enumerate(status) if s == MISSED]
    if not missed:
        return {}
    mean = dataset_mean_shape(points, sizes, status)
    for i in missed:
        h, w = (int(v) for v in sizes[i])
        if mean is not None:
            points[i] = (mean * np.array([w, h])).astype(np.float32)
            status[i] = FALLBACK_MEAN
        else:
            points[i] = canonical_shape_in_crop(h, w, inset)
            status[i] = FALLBACK_CANONICAL
        confidence[i] = 0.0
    used = {s: sum(1 for i in missed if status[i] == s) for s in (FALLBACK_MEAN, FALLBACK_CANONICAL)}
    if mean is None:
        log.warning("no face was detected in the whole dataset: %d images get the canonical iBUG-68 "
                    "mean shape in the crop box", len(missed))
    return {k: v for k, v in used.items() if v}
