"""benchmarks/calibrate_synthetic.py: test accuracy per band of a property of the generated faces."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import calibrate_synthetic as cs

from lldif_bench.emotions import CANONICAL
from lldif_bench.synthetic import sample_face_spec, split_plan
from lldif_bench.synthetic.writer import aligned_relpath


def _run(tmp_path: Path, name: str, correct) -> Path:
    """A run folder whose predictions.csv is right exactly where ``correct(contrast)`` holds."""
    rows = []
    for index, (file, label) in enumerate(split_plan(200, seed=3)):
        if file.startswith("test_"):
            right = correct(sample_face_spec(label, 3, index).look.feature_contrast)
            guess = label if right else (label + 1) % len(CANONICAL)
            rows.append({"path": aligned_relpath(file), "label": CANONICAL[label], "prediction": CANONICAL[guess]})
    run = tmp_path / name
    run.mkdir()
    pd.DataFrame(rows).to_csv(run / "predictions.csv", index=False)
    return run


def test_accuracy_by_face_property_reads_each_images_spec_back_from_the_seed(tmp_path):
    runs = {"clear": _run(tmp_path, "c", lambda c: True), "low-light": _run(tmp_path, "l", lambda c: c > 0.7)}
    table = cs.accuracy_by_face_property(runs, num_images=200, seed=3, prop=lambda s: s.look.feature_contrast,
                                         bands=(0.0, 0.7, 1.0))
    n_test = sum(name.startswith("test_") for name, _ in split_plan(200, seed=3))
    assert table["images"].sum() == n_test and (table["images"] > 0).all()
    assert list(table["clear"]) == [100.0, 100.0]
    assert list(table["low-light"]) == [0.0, 100.0]
