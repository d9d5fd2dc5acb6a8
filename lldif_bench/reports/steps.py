"""Accuracy vs diffusion steps T (the paper's Fig. 8): retrain phase 2 of a finished LLDif run per T.

Stages 0 and 1 never read T (:data:`~lldif_bench.models.lldif.config.PHASE2_KEYS`), so every T starts
from the finished run's stage-0/1 checkpoints (copied into ``<run>-T<t>``) and trains 2a + 2b with
``diffusion.timesteps = t``; the run itself stands for its own T. The table has, per T, the label-free
accuracy and the EPD diagnostics that say whether the prior carries per-image information.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from lldif_bench.errors import UserError

log = logging.getLogger(__name__)


def run_timesteps(run_dir: Path) -> int:
    """T of a finished LLDif run, from its config.yaml."""
    from lldif_bench.models.lldif.builder import config_from_options

    return config_from_options(_saved_config(run_dir).get("method_options") or {}).diffusion.timesteps


def _saved_config(run_dir: Path) -> dict[str, Any]:
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run_dir}: no config.yaml (not a run folder)")
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    if config.get("method") != "lldif":
        raise UserError(f"{run_dir} is a {config.get('method')!r} run; the T sweep needs an LLDif run")
    return config


def step_config(run_dir: Path, steps: int) -> dict[str, Any]:
    """The run config of ``<run>-T<steps>``: the finished run's, with ``diffusion.timesteps`` set."""
    config = _saved_config(run_dir)
    options = dict(config.get("method_options") or {})
    options["diffusion"] = {**(options.get("diffusion") or {}), "timesteps": int(steps)}
    return {**config, "method_options": options, "name": f"{run_dir.name}-T{steps}", "out": str(run_dir.parent),
            "resume": False, "overwrite": False, "stage": None}


def sweep_steps(run_dir: Path, steps: list[int], extra_args: list[str] | None = None) -> pd.DataFrame:
    """Train (or resume, or reuse) ``<run>-T<t>`` for each T and return the table, one row per T."""
    import click
    import yaml

    from lldif_bench.cli.main import main
    from lldif_bench.imageio import atomic_write_bytes
    from lldif_bench.reports.reproduce import copy_finished_stages

    run_dir = Path(run_dir)
    if not (run_dir / "results.json").is_file():
        raise UserError(f"{run_dir}: not a finished run (no results.json); finish it first (--resume)")
    own = run_timesteps(run_dir)
    rows = []
    for t in steps:
        if t < 1:
            raise UserError(f"--steps: T must be >= 1, got {t}")
        target = run_dir if t == own else run_dir.parent / f"{run_dir.name}-T{t}"
        if not (target / "results.json").is_file():
            config = step_config(run_dir, t)
            if not target.exists():
                copy_finished_stages(run_dir, target, ("0", "1"))
            path = target / "sweep-config.yaml"
            atomic_write_bytes(path, yaml.safe_dump(config, sort_keys=False).encode())
            args = ["run", "--method", "lldif", "--data", str(config["data"]), "--config", str(path),
                    "--out", str(target.parent), "--name", target.name, "--seed", str(config.get("seed", 0)),
                    "--resume", *(extra_args or [])]
            log.warning("sweep steps: T = %d -> %s", t, target)
            try:
                main.main(args=args, prog_name="lldif-bench", standalone_mode=False)
            except click.ClickException as err:
                raise UserError(f"T = {t} ({target}) failed: {err.format_message()}") from None
        rows.append(step_row(target, t))
    return pd.DataFrame(rows)


def step_row(run_dir: Path, steps: int) -> dict[str, Any]:
    results = json.loads((run_dir / "results.json").read_text())
    diag = (results.get("diagnostics") or {}).get(results.get("stage", "2b")) or {}
    return {"T": steps, "run": run_dir.name, "accuracy": 100 * results["final"]["accuracy"],
            "mean_class_accuracy": 100 * results["final"]["mean_class_accuracy"],
            "acc_fed_zhat": 100 * diag.get("epd_acc_zhat", float("nan")),
            "acc_fed_shuffled_zhat": 100 * diag.get("epd_acc_zhat_shuffled", float("nan")),
            "centroid_acc_zhat": 100 * diag.get("epd_centroid_acc_zhat", float("nan")),
            "spread_zhat": diag.get("epd_spread_zhat", float("nan"))}
