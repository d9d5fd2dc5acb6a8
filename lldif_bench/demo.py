"""``lldif-bench demo``: from nothing to a clear-vs-low-light leaderboard on the synthetic data.

Steps (each resumes: run it again after an interrupt and finished work is kept):

1. render the synthetic FER set (``OUT/data/clear``) and its low-light copy (``OUT/data/lowlight``,
   the ``DEMO_PRESET`` preset);
2. train each chosen method on both with one small CPU-sized recipe (``DEMO_RECIPE``: few epochs,
   small images — a smoke-scale proxy, not the paper's settings);
3. write ``OUT/leaderboard.csv`` / ``.md``: per method, accuracy on clear and on low-light images
   and the drop, from the runs' own ``runs/leaderboard.csv`` rows.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import yaml

from lldif_bench.errors import UserError

if TYPE_CHECKING:
    from lldif_bench.training.config import RunConfig

log = logging.getLogger(__name__)

# Trained by default: ResNet-18; --methods adds others.
DEFAULT_METHODS = ("resnet18",)
# One recipe for every method (the methods' own paper recipes need hundreds of GPU epochs). 48 px:
# about 1.6x the images per second of 64 px on one CPU thread, and the calibrated expressions stay
# readable; Adam 5e-4 (the head at 10x, see baselines/resnet18.py): 1e-3 left a 4,000-image run stuck at
# the majority class; random erasing (suite default p=0.5) slows a short run down, so it is off here.
# 6 epochs keep the demo near 10 minutes on 2 cores (ResNet-18 trains at ~65-75 img/s at 48 px there)
# and are the difficulty calibration (benchmarks/calibrate_synthetic.py, README). Higher learning rates
# did not learn faster (generator revision 2): Adam 1e-3 or SGD 0.05 (head at 10x, batch 32) stayed at
# the majority class; Adam 1e-3 without the head factor did no better than this recipe.
DEMO_RECIPE = {"epochs": 6, "image_size": 48, "batch_size": 64, "lr": 5e-4, "weight_decay": 1e-4, "optimizer": "adam",
               "optimizer_params": {}, "scheduler": "cosine", "scheduler_params": {}, "augment": {"erase_p": 0.0}}
# The low-light copy's preset. The renders carry almost no camera noise, so the `paper` preset's
# Lightroom adjustments alone are nearly invertible on them (generator revision 2, seed 1, 24 epochs:
# ResNet-18 89.2% clear, 87.4% on the `paper` copy). `realistic` adds what a dark capture loses for
# real: Poisson-Gaussian sensor noise in linear light and JPEG re-compression.
DEMO_PRESET = "realistic"
# Default dataset size: 4,000 images (3,200 to train). Calibration (generator revision 3, low-light
# copy by DEMO_PRESET, idle 2-core machine): `lldif-bench demo` took 10 min 50 s, ResNet-18 85.4% on
# clear, 75.4% on low-light images (seed 0); screening runs of the same recipe gave 83.0% / 69.9%
# (seed 1). Trained 24 epochs (seed 1) the gap shrinks to 93.0% / 90.5% (README).
DEMO_NUM_IMAGES = 4000
CONDITIONS = {"clear": "clear", "low-light": "lowlight"}


def demo_recipe(method: str, recipe: dict | None = None) -> dict:
    """:data:`DEMO_RECIPE` with the method's own demo settings (``builder.DEMO``) and then ``recipe`` on top.

    A method sets ``DEMO`` only for what the one shared recipe cannot give it (e.g. a transformer
    trained from scratch); the resolved values land in each run's ``config.yaml``.
    """
    from lldif_bench.methods import load_all_methods

    own = dict(getattr(load_all_methods().get(method), "DEMO", {}) or {})
    return {**DEMO_RECIPE, **own, **(recipe or {})}


@dataclass
class DemoResult:
    out: Path
    table: pd.DataFrame
    run_dirs: list[Path] = field(default_factory=list)
    skipped_methods: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each run trained in this call


def _finished(run_dir: Path) -> bool:
    return (run_dir / "results.json").is_file()


# Settings that decide what a run learns; a saved run that differs in any of them is retrained.
RECIPE_KEYS = ("method", "data", "seed", "epochs", "image_size", "batch_size", "lr", "weight_decay", "optimizer",
               "optimizer_params", "scheduler", "scheduler_params", "augment", "method_options")


def _same_recipe(run_dir: Path, cfg: RunConfig) -> bool:
    """Whether ``run_dir/config.yaml`` was written for the same recipe as ``cfg``."""
    saved_file = run_dir / "config.yaml"
    if not saved_file.is_file():
        return False
    saved = (yaml.safe_load(saved_file.read_text()) or {}).get("config", {})
    wanted = json.loads(json.dumps(cfg.to_dict(), default=str))  # as the harness writes it
    # the harness records the data folder resolved; a relative --out (the default `demo`) is the same folder
    same_data = saved.get("data") is not None and Path(saved["data"]).resolve() == Path(wanted["data"]).resolve()
    return same_data and all(saved.get(key) == wanted[key] for key in RECIPE_KEYS if key != "data")


def run_demo(out: Path, *, methods: tuple[str, ...] = DEFAULT_METHODS, num_images: int = DEMO_NUM_IMAGES, size: int = 100,
             seed: int = 0, device: str = "auto", epochs: int | None = None, recipe: dict | None = None,
             revision: int | None = None, progress: bool = True) -> DemoResult:
    """Generate, darken, train ``methods`` on clear and low-light copies, and tabulate.

    ``recipe`` overrides keys of :data:`DEMO_RECIPE` (``epochs`` is a shortcut for one of them);
    ``revision`` is the synthetic generator revision (default: ``synthetic.revisions.DEFAULT_REVISION``).
    A finished run is kept only when it was trained with the same recipe; otherwise it is retrained.
    """
    from lldif_bench.methods import load_all_methods
    from lldif_bench.synthetic.pair import make_synthetic_pair
    from lldif_bench.synthetic.revisions import DEFAULT_REVISION

    registry = load_all_methods()
    unknown = [m for m in methods if m not in registry]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; available: {', '.join(registry.names())}")
    out = Path(out)
    data = out / "data"
    log.info("step 1/3: synthetic data (%d images) and its low-light copy in %s", num_images, data)
    made, _ = make_synthetic_pair(data, num_images=num_images, size=size, seed=seed,
                                  revision=DEFAULT_REVISION if revision is None else revision, preset=DEMO_PRESET,
                                  device=device, progress=progress)
    data_kept = bool(made.get("reused"))  # runs trained on a replaced dataset are retrained

    overrides = {**(recipe or {}), **({"epochs": epochs} if epochs else {})}
    result = DemoResult(out=out, table=pd.DataFrame())
    for method in methods:
        recipe = demo_recipe(method, overrides)
        for condition, folder in CONDITIONS.items():
            run_dir, seconds = train_condition(out, method, data / folder, condition, seed=seed, device=device,
                                               recipe=recipe, data_kept=data_kept, progress=progress)
            result.run_dirs.append(run_dir)
            if seconds is not None:
                result.seconds[run_dir.name] = seconds
    result.table = leaderboard_table(out / "runs" / "leaderboard.csv", result.run_dirs)
    write_table(result.table, out / "leaderboard")
    return result


def train_condition(out: Path, method: str, data: Path, condition: str, *, seed: int, device: str, recipe: dict,
                    data_kept: bool, progress: bool) -> tuple[Path, float | None]:
    """Train ``method`` on ``data`` into ``out/runs/<method>-synthetic-<condition>-s<seed>``.

    A finished run of the same recipe on kept data is kept (seconds None); a started one resumes.
    Returns the run folder and the seconds this call trained.
    """
    from lldif_bench.training import resolve_config, run_training

    name = f"{method}-synthetic-{condition}-s{seed}"
    run_dir = out / "runs" / name
    cfg = resolve_config({"method": method, "data": str(data), "out": str(out / "runs"),
                          "name": name, "seed": seed, "device": device, "progress": progress, **recipe})
    if data_kept and _finished(run_dir) and _same_recipe(run_dir, cfg):
        log.info("kept finished run %s", run_dir)
        return run_dir, None
    log.info("step 2/3: training %s on %s images (%d epochs)", method, condition, recipe["epochs"])
    resume = data_kept and run_dir.exists() and _same_recipe(run_dir, cfg)
    start = time.perf_counter()
    trained = run_training(dataclasses.replace(cfg, resume=resume, overwrite=not resume))
    return trained, time.perf_counter() - start


def leaderboard_table(board_csv: Path, run_dirs: list[Path]) -> pd.DataFrame:
    """One row per method: accuracy and mean class accuracy (%) on clear and low-light, and the drop."""
    board = pd.read_csv(board_csv)
    wanted = {str(p.resolve()) for p in run_dirs}
    board = board[board["run_dir"].map(lambda p: str(Path(p).resolve()) in wanted)]
    board = board.drop_duplicates("run_dir", keep="last")  # a resumed run may have appended twice
    rows = []
    for method, group in board.groupby("method", sort=False):
        by = {r.condition: r for r in group.itertuples()}
        row = {"method": method}
        for condition in CONDITIONS:
            r = by.get(condition)
            row[f"{condition} acc (%)"] = round(100 * r.accuracy, 2) if r is not None else None
            row[f"{condition} mean class acc (%)"] = (round(100 * r.mean_class_accuracy, 2)
                                                      if r is not None else None)
        if None not in (row["clear acc (%)"], row["low-light acc (%)"]):
            row["drop (points)"] = round(row["clear acc (%)"] - row["low-light acc (%)"], 2)
        rows.append(row)
    return pd.DataFrame(rows)


def write_table(table: pd.DataFrame, stem: Path) -> tuple[Path, Path]:
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    table.to_csv(csv_path, index=False)
    md_path.write_text(table.to_markdown(index=False) + "\n")
    return csv_path, md_path
