"""Facial landmarks for DLNet: backends (face-alignment, dlib, synthetic ground truth, auto), the
per-dataset ``landmarks.npz`` cache, the detector-miss fallback, and on-device heatmap rendering."""

from lldif_bench.landmarks import (  # noqa: F401  (register)
    dlib_backend,
    face_alignment_backend,
    synthetic_backend,
)
from lldif_bench.landmarks.backends import BACKENDS, Backend, Resolved, build_backend
from lldif_bench.landmarks.cache import (
    GROUND_TRUTH_FILE,
    LANDMARKS_FILE,
    LandmarkTable,
    align_to_records,
    load_landmarks,
    read_landmarks,
    save_landmarks,
)
from lldif_bench.landmarks.extract import extract_landmarks_for_dataset
from lldif_bench.landmarks.heatmaps import render_heatmaps, render_multiscale
from lldif_bench.landmarks.metrics import nme

__all__ = [
    "BACKENDS",
    "GROUND_TRUTH_FILE",
    "LANDMARKS_FILE",
    "Backend",
    "LandmarkTable",
    "Resolved",
    "align_to_records",
    "build_backend",
    "extract_landmarks_for_dataset",
    "load_landmarks",
    "nme",
    "read_landmarks",
    "render_heatmaps",
    "render_multiscale",
    "save_landmarks",
]
