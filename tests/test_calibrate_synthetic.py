"""benchmarks/calibrate_synthetic.py: accuracy per band of a sampled degradation parameter; --converge's
plateau rule, summary table and training loop (tiny)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import calibrate_synthetic as cs
import calibrate_synthetic_converge as conv


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


# --- --converge ---------------------------------------------------------------------------------

def test_plateau_rule():
    rising = [0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.84, 0.87]
    assert not conv.plateaued(rising)
    flat = [0.3, 0.5, 0.8, 0.9, 0.902, 0.903, 0.904, 0.9045]
    assert conv.plateaued(flat)                       # the last 4 epochs gained < 0.5 points
    assert not conv.plateaued([0.2, 0.21, 0.21])      # too short to tell
    assert conv.plateaued([0.5, 0.996])               # saturated
    assert conv.plateaued([0.3, 0.9, float("nan"), 0.9, 0.9, 0.9, 0.9])  # NaN epochs are skipped
    assert conv.epochs_schedule(24, 96) == [24, 48, 96]
    assert conv.epochs_schedule(24, 60) == [24, 48, 60]
    assert conv.epochs_schedule(30, 24) == [30]


def test_summary_table_reports_gaps_mean_and_range():
    def result(seed, clear, low, paper):
        r = conv.SeedResult(seed, 24, [0.5, 0.99])
        r.metrics = {"clear": {"accuracy": clear, "mean class accuracy": clear - 5},
                     "low-light": {"accuracy": low, "mean class accuracy": low - 5},
                     "low-light paper": {"accuracy": paper, "mean class accuracy": paper - 5}}
        return r

    table = conv.summary_table([result(0, 92.0, 83.0, 89.0), result(1, 94.0, 85.0, 90.0)])
    assert list(table["seed"]) == ["0", "1", "mean", "range"]
    assert list(table["gap low-light (points)"][:3]) == [9.0, 9.0, 9.0]
    assert list(table["gap low-light paper (points)"][:3]) == [3.0, 4.0, 3.5]
    assert table["clear acc (%)"].iloc[3] == "92 to 94"


def test_converge_seed_trains_until_the_plateau_then_both_lowlight_copies(tmp_path, monkeypatch):
    histories = iter([[0.2, 0.4], [0.2, 0.3, 0.3, 0.3, 0.3, 0.3]])  # 1st run still rising, 2nd flat
    monkeypatch.setattr(conv, "MIN_EPOCHS", 1)
    monkeypatch.setattr(conv, "train_accuracy", lambda run_dir: next(histories))
    result = conv.converge_seed(tmp_path, method="resnet18", num_images=28, seed=0, revision=4, device="cpu",
                                recipe={"epochs": 1, "image_size": 32}, max_epochs=2)
    assert result.epochs == 2
    assert set(result.metrics) == {"clear", "low-light", "low-light paper"}
    runs = tmp_path / "seed0" / "runs"
    for name in ("clear", "low-light", "low-light-paper"):
        assert (runs / f"resnet18-synthetic-{name}-s0" / "results.json").is_file()
    for folder in ("lowlight", "lowlight-paper"):
        card = json.loads((tmp_path / "seed0" / "data" / folder / "dataset.json").read_text())
        assert card["preset"] == {"lowlight": "realistic", "lowlight-paper": "paper"}[folder]
    assert json.loads((tmp_path / "seed0" / "data" / "clear" / "synthetic.json").read_text())["generator_revision"] == 4
