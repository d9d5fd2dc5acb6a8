"""``calibrate_synthetic.py --converge``: does the low-light gap survive training to convergence?

Per seed: render the synthetic set (``--revision``), darken it twice (the demo's ``realistic`` preset
and ``paper``), train ResNet-18 on the clear set for ``MIN_EPOCHS`` (24) epochs with the demo recipe,
and while its train accuracy has not plateaued (:func:`plateaued`) train it again for twice the
epochs (up to ``--max-epochs``; the cosine schedule spans the whole run, so a longer run is a new
run). The two low-light copies are then trained for the same number of epochs. Printed: clear,
low-light and the gap per seed and as mean and range over seeds, mean class accuracy, and the
single-statistic probes on the clear set (majority class, colour histogram, raw pixels, landmark
geometry).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lldif_bench.datasets import open_dataset
from lldif_bench.datasets.build import build_lowlight
from lldif_bench.demo import DEMO_PRESET, demo_recipe, train_condition
from lldif_bench.synthetic.pair import CLEAR_DIR, LOWLIGHT_DIR, make_synthetic_pair

MIN_EPOCHS = 24
MAX_EPOCHS = 96
PLATEAU_WINDOW = 4        # epochs
PLATEAU_TOLERANCE = 0.005  # train accuracy (fraction): the last window gained less than this
SATURATED = 0.995          # or the train accuracy is already this high
PAPER_PRESET = "paper"
# condition -> (low-light folder, preset); "clear" is the generator's own folder
LOWLIGHT_COPIES = {"low-light": (LOWLIGHT_DIR, DEMO_PRESET), "low-light paper": ("lowlight-paper", PAPER_PRESET)}


def plateaued(train_accuracy: list[float], window: int = PLATEAU_WINDOW, tolerance: float = PLATEAU_TOLERANCE,
              saturated: float = SATURATED) -> bool:
    """Whether a run's per-epoch train accuracy has stopped rising: its best over the last ``window``
    epochs beats the best before them by less than ``tolerance``, or it reached ``saturated``."""
    acc = [a for a in train_accuracy if not math.isnan(a)]  # NaN: no training that epoch
    if acc and acc[-1] >= saturated:
        return True
    if len(acc) <= window:
        return False
    return max(acc[-window:]) - max(acc[:-window]) < tolerance


def epochs_schedule(start: int, max_epochs: int) -> list[int]:
    """The epoch counts tried in turn: ``start``, doubled until ``max_epochs`` (included)."""
    out = [start]
    while out[-1] < max_epochs:
        out.append(min(2 * out[-1], max_epochs))
    return out


def train_accuracy(run_dir: Path) -> list[float]:
    metrics = pd.read_csv(run_dir / "metrics.csv")
    return metrics["train_accuracy"].astype(float).tolist()


def final_metrics(run_dir: Path) -> dict[str, float]:
    final = json.loads((run_dir / "results.json").read_text())["final"]
    return {"accuracy": 100 * final["accuracy"], "mean class accuracy": 100 * final["mean_class_accuracy"]}


def prepare_data(data: Path, *, num_images: int, seed: int, revision: int, device: str) -> bool:
    """``data/clear``, ``data/lowlight`` (demo preset) and ``data/lowlight-paper``; each resumes.
    Returns whether the clear set was kept (else runs trained on it are stale)."""
    made, _ = make_synthetic_pair(data, num_images=num_images, seed=seed, revision=revision, preset=DEMO_PRESET,
                                  device=device, progress=False)
    for folder, preset in LOWLIGHT_COPIES.values():
        if folder == LOWLIGHT_DIR:
            continue  # made with the pair
        if not made.get("reused") and (data / folder).exists():
            shutil.rmtree(data / folder)  # darkened from a replaced clear set
        build_lowlight(open_dataset(data / CLEAR_DIR), data / folder, preset=preset, seed=seed, device=device,
                       landmarks="synthetic", progress=False,
                       command_line=f"calibrate_synthetic --converge (preset {preset}, seed {seed})")
    return bool(made.get("reused"))


@dataclass
class SeedResult:
    seed: int
    epochs: int
    clear_train_accuracy: list[float]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # condition -> final metrics


def converge_seed(out: Path, *, method: str, num_images: int, seed: int, revision: int, device: str,
                  recipe: dict, max_epochs: int = MAX_EPOCHS, progress: bool = False) -> SeedResult:
    out = out / f"seed{seed}"  # data and runs of one seed
    data = out / "data"
    kept = prepare_data(data, num_images=num_images, seed=seed, revision=revision, device=device)
    recipe = demo_recipe(method, recipe)
    for epochs in epochs_schedule(max(MIN_EPOCHS, recipe["epochs"]), max_epochs):
        run_dir, _ = train_condition(out, method, data / CLEAR_DIR, "clear", seed=seed, device=device,
                                     recipe={**recipe, "epochs": epochs}, data_kept=kept, progress=progress)
        history = train_accuracy(run_dir)
        if plateaued(history):
            break
    result = SeedResult(seed, epochs, history, {"clear": final_metrics(run_dir)})
    for condition, (folder, _) in LOWLIGHT_COPIES.items():
        run_dir, _ = train_condition(out, method, data / folder, condition.replace(" ", "-"), seed=seed,
                                     device=device, recipe={**recipe, "epochs": epochs}, data_kept=kept,
                                     progress=progress)
        result.metrics[condition] = final_metrics(run_dir)
    return result


def summary_table(results: list[SeedResult]) -> pd.DataFrame:
    """Rows: per seed and the mean and range over seeds; columns: accuracy and mean class accuracy per
    condition, and each low-light copy's gap to clear (points)."""
    rows = []
    for r in results:
        row = {"seed": str(r.seed), "epochs": r.epochs,
               "clear train acc (%)": round(100 * r.clear_train_accuracy[-1], 2)}
        for condition, m in r.metrics.items():
            row[f"{condition} acc (%)"] = round(m["accuracy"], 2)
            row[f"{condition} mean class acc (%)"] = round(m["mean class accuracy"], 2)
        for condition in LOWLIGHT_COPIES:
            row[f"gap {condition} (points)"] = round(r.metrics["clear"]["accuracy"] - r.metrics[condition]["accuracy"], 2)
        rows.append(row)
    table = pd.DataFrame(rows)
    numeric = table.drop(columns=["seed"])
    lo, hi = numeric.min(), numeric.max()
    mean = {"seed": "mean", **numeric.mean().round(2).to_dict()}
    spread = {"seed": "range", **{c: f"{lo[c]:g} to {hi[c]:g}" for c in numeric.columns}}
    return pd.concat([table, pd.DataFrame([mean, spread])], ignore_index=True)


def format_probes(probes: dict[str, float]) -> str:
    majority = probes["majority class"]
    lines = []
    for name, acc in probes.items():
        note = "" if name == "majority class" else f"  ({100 * (acc - majority):+.1f} points vs majority)"
        lines.append(f"  {name:<34} {100 * acc:5.1f}%{note}")
    return "\n".join(lines)
