"""``synthetic``: the ground-truth points the synthetic generator wrote, looked up by record key.

Where the truth lives: ``landmarks_ground_truth.npz`` or a ``landmarks.npz`` whose rows are all
``ground-truth``, in the dataset folder or its sibling ``clear/`` (the low-light copy
``DIR/lowlight`` of ``make-dataset synthetic`` shares ``DIR/clear``'s faces). Keys match exactly,
or with the extension ignored (a copy re-encoded as PNG). Points are rescaled if the image's size
differs from the size recorded with the truth.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lldif_bench.errors import UserError
from lldif_bench.landmarks.backends import BACKENDS, backend_factory, empty_result
from lldif_bench.landmarks.cache import (
    GROUND_TRUTH_FILE,
    LANDMARKS_FILE,
    LandmarkTable,
    read_landmarks,
)

log = logging.getLogger(__name__)


def candidate_files(search_dirs: Sequence[Path]) -> list[Path]:
    """Files that may hold ground truth, best first: each dir, then its sibling ``clear/``."""
    dirs: list[Path] = []
    for d in search_dirs:
        d = Path(d)
        for cand in (d, d.parent / "clear"):
            if cand not in dirs:
                dirs.append(cand)
    return [d / name for d in dirs for name in (GROUND_TRUTH_FILE, LANDMARKS_FILE)]


def find_ground_truth(search_dirs: Sequence[Path]) -> tuple[Path, LandmarkTable] | None:
    for path in candidate_files(search_dirs):
        if not path.is_file():
            continue
        table = read_landmarks(path)
        if len(table) and all(s == "ground-truth" for s in table.status):
            return path, table
    return None


def _stem(key: str) -> str:
    return os.path.splitext(key)[0]


class SyntheticBackend:
    """Ground-truth landmarks of the built-in synthetic dataset (no detection)."""

    name = "synthetic"

    def __init__(self, *, device: str = "auto", whole_crop: bool = False, search_dirs: Sequence[Path] = ()) -> None:
        found = find_ground_truth(search_dirs)
        if found is None:
            looked = ", ".join(str(p) for p in candidate_files(search_dirs)) or "(no folder given)"
            raise UserError("the synthetic landmark backend needs the ground truth written by "
                            f"`lldif-bench make-dataset synthetic`; none found (looked for {looked})")
        self.source, self.truth = found
        self.index = self.truth.index()
        self.stem_index = {_stem(k): i for k, i in self.index.items()}
        log.info("synthetic landmarks: ground truth from %s", self.source)

    def detect(self, images: list[np.ndarray], whole_crop: bool,
               keys: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        if keys is None or len(keys) != len(images):
            raise ValueError("the synthetic backend looks points up by record key: pass keys=relpaths")
        points, confidence, status = empty_result(len(images))
        for i, (key, image) in enumerate(zip(keys, images)):
            row = self.index.get(key, self.stem_index.get(_stem(key)))
            if row is None:
                continue
            pts = self.truth.points[row].astype(np.float32)
            if self.truth.image_size is not None:
                th, tw = self.truth.image_size[row]
                h, w = image.shape[:2]
                if (th, tw) != (h, w):
                    pts = ((pts + 0.5) * np.array([w / tw, h / th], dtype=np.float32) - 0.5).astype(np.float32)
            points[i] = pts
            confidence[i] = 1.0
            status[i] = "ground-truth"
        return points, confidence, status


def availability(whole_crop: bool = False) -> tuple[bool, str]:
    return True, "needs the synthetic dataset's ground-truth landmark file"


BACKENDS.add("synthetic", backend_factory(SyntheticBackend, availability),
             help="ground truth of the built-in synthetic dataset")
