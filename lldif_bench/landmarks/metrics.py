"""Landmark error measures."""

from __future__ import annotations

import numpy as np

LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 36, 45  # iBUG-68, 0-based


def nme(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-face normalised mean error: mean point-to-point distance over the 68 points divided by
    the inter-ocular distance (outer eye corners 36 and 45 of the ground truth), the 300-W
    convention. ``pred``/``truth``: ``(N, 68, 2)`` → ``(N,)``."""
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape or pred.ndim != 3 or pred.shape[1:] != (68, 2):
        raise ValueError(f"nme needs two (N, 68, 2) arrays, got {pred.shape} and {truth.shape}")
    iod = np.linalg.norm(truth[:, LEFT_EYE_OUTER] - truth[:, RIGHT_EYE_OUTER], axis=-1)
    if np.any(iod <= 0):
        raise ValueError("ground truth with coincident outer eye corners: NME undefined")
    return np.linalg.norm(pred - truth, axis=-1).mean(axis=1) / iod
