"""benchmarks/calibrate_synthetic.py: test accuracy per band of a sampled degradation parameter."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import calibrate_synthetic as cs


def _write(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    frame.to_csv(folder / ("manifest.csv" if name == "low" else "predictions.csv"), index=False)
    return folder


def test_accuracy_by_degradation_bands_the_test_images_by_a_manifest_parameter(tmp_path):
    paths = [f"Image/aligned/test_{i:04d}_aligned.jpg" for i in range(1, 9)]
    noise = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008]
    manifest = pd.DataFrame({"output": [*paths, "Image/aligned/train_00001_aligned.jpg", paths[0] + ".bad"],
                             "split": ["test"] * 8 + ["train", "test"], "status": ["ok"] * 9 + ["skipped:corrupt"],
                             "param.noise_shot": [*noise, 0.5, 0.5]})
    low = _write(tmp_path, "low", manifest)
    # clear: all right; low-light: wrong exactly on the noisier half
    clear = _write(tmp_path, "c", pd.DataFrame({"path": paths, "label": ["fear"] * 8, "prediction": ["fear"] * 8}))
    dark = _write(tmp_path, "l", pd.DataFrame({"path": paths[::-1], "label": ["fear"] * 8,
                                               "prediction": ["anger"] * 4 + ["fear"] * 4}))
    table = cs.accuracy_by_degradation({"clear": clear, "low-light": dark}, pd.read_csv(low / "manifest.csv"),
                                      "noise_shot", bands=2)
    assert list(table.index) == ["0.001 to 0.0045", "0.0045 to 0.008"]  # train and skipped rows left out
    assert list(table["images"]) == [4, 4]
    assert list(table["clear"]) == [100.0, 100.0]
    assert list(table["low-light"]) == [100.0, 0.0]
