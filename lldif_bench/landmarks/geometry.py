"""Box geometry shared by the backends and the fallback: the whole-crop face box, and points
normalised to a box and back."""

from __future__ import annotations

import numpy as np

NUM_POINTS = 68

# Whole-crop mode hands the detector-free predictors the crop itself as the face box, shrunk by
# this fraction of the side on every edge. Aligned FER crops (RAF-DB aligned, FERPlus) frame the
# face more loosely than the tight boxes dlib's and S3FD's detectors return. 0.15 gave dlib its
# lowest mean NME on 140 synthetic faces, with and without its box re-fit (inset 0 / 0.1 / 0.15 /
# 0.2 → 0.27 / 0.16 / 0.137 / 0.144 without, 0.186 / 0.108 / 0.087 / 0.110 with 2 re-fits);
# re-measure with ``python benchmarks/bench_landmarks.py --calibrate``.
DEFAULT_INSET = 0.15


def crop_box(height: int, width: int, inset: float = DEFAULT_INSET) -> np.ndarray:
    """``(x0, y0, x1, y1)`` of the whole image shrunk by ``inset`` × side on each edge."""
    if not 0.0 <= inset < 0.5:
        raise ValueError(f"inset must be in [0, 0.5), got {inset}")
    return np.array([inset * width, inset * height, (1 - inset) * width, (1 - inset) * height],
                    dtype=np.float64)


def to_box(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Pixel points ``(..., 68, 2)`` → coordinates in ``box`` units (0..1 across the box)."""
    x0, y0, x1, y1 = box
    return (points - np.array([x0, y0])) / np.array([x1 - x0, y1 - y0])


def from_box(unit_points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_box`."""
    x0, y0, x1, y1 = box
    return unit_points * np.array([x1 - x0, y1 - y0]) + np.array([x0, y0])


def as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` → contiguous uint8 ``(H, W, 3)``."""
    if image.dtype != np.uint8:
        raise ValueError(f"landmark backends take uint8 images, got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W, C) image with C in 1/3, got shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[..., :3]
    return np.ascontiguousarray(image)
