"""``lldif-bench sweep``: accuracy of trained runs vs exposure (EV), and LLDif accuracy vs diffusion steps T."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lldif_bench.cli.common import device_option, resolved, seed_option


@click.group("sweep")
def command() -> None:
    """Sweeps: evaluate trained runs under a varied condition (darkness), or retrain LLDif's phase 2
    per diffusion step count (steps, the paper's Fig. 8)."""


@command.command("darkness")
@click.option("--run", "runs", multiple=True, required=True, type=click.Path(path_type=Path),
              help="A finished run directory (repeatable): one line per run on the chart.")
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path),
              help="The CLEAR dataset folder whose test split is re-darkened.")
@click.option("--ev", "ev", default="-0.5:-5:0.5", show_default=True,
              help="Exposure levels: START:STOP:STEP (inclusive) or a comma list.")
@click.option("--preset", default=None,
              help="Degradation preset for the other adjustments [paper, or the --like copy's].")
@click.option("--like", "like", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A low-light copy made by make-dataset: take its preset and seed from dataset.json.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/sweep-darkness"),
              show_default=True, help="Folder for sweep.csv, sweep.png and sweep.pdf.")
@click.option("--batch-size", type=int, default=128, show_default=True)
@device_option
@seed_option
@click.pass_context
def darkness(ctx, runs, data_dir, ev, preset, like, out, batch_size, device, seed) -> None:
    """Re-darken the clear test split at each EV (every other degradation parameter as the preset
    samples it for that image) and evaluate every run on it; writes OUT/sweep.csv and the chart.

    \b
    Example:
      lldif-bench sweep darkness --run runs/lldif-kdef-low-light-s0 --run runs/dan-kdef-low-light-s0 \\
          --data data/kdef --like data/ll-kdef --ev -0.5:-5:0.5
    """
    from lldif_bench.errors import UserError
    from lldif_bench.imageio import atomic_write_bytes
    from lldif_bench.reports.figures import plot_sweep
    from lldif_bench.reports.sweep import parse_ev_range, sweep_darkness, sweep_series

    seed = resolved(ctx, "seed", seed)
    if like is not None:
        card = like / "dataset.json"
        if not card.is_file():
            raise UserError(f"--like {like}: no dataset.json (pass a folder written by make-dataset)")
        meta = json.loads(card.read_text())
        preset = preset or meta.get("preset")
        seed = int(meta.get("seed", seed)) if ctx.get_parameter_source("seed").name == "DEFAULT" else seed
    preset = preset or "paper"
    evs = parse_ev_range(ev)
    frame = sweep_darkness(list(runs), data_dir, evs, preset=preset, seed=int(seed or 0),
                           device=resolved(ctx, "device", device) or "auto", batch_size=batch_size)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "sweep.csv", frame.to_csv(index=False, float_format="%.4f").encode())
    click.echo(frame.pivot_table(index="ev", columns="label", values="accuracy", sort=False)
               .sort_index(ascending=False).round(2).to_string())
    click.echo(f"wrote {out / 'sweep.csv'}")
    for path in plot_sweep(sweep_series(frame), out / "sweep.png",
                           title=f"Accuracy vs exposure (preset {preset}, seed {seed})"):
        click.echo(f"wrote {path}")


@command.command("steps")
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A finished LLDif run: its stages 0-1 are reused, phase 2 is retrained per T.")
@click.option("--steps", "steps", default="1,2,4,8", show_default=True, help="Diffusion steps T, comma-separated.")
@click.option("--run-args", default="", help="Extra arguments for every 'lldif-bench run', e.g. '--workers 1'.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV of the table [RUN's folder/steps-<RUN>.csv].")
def steps(run_dir: Path, steps: str, run_args: str, out: Path | None) -> None:
    """Accuracy vs diffusion steps T (the paper's Fig. 8): for each T, RUN-T<t> starts from RUN's
    finished stages 0-1 and trains phases 2a + 2b with that T (resumable; finished ones are reused);
    prints accuracy and the EPD diagnostics per T and writes them as CSV.

    \b
    Example:
      lldif-bench sweep steps --run demo/runs/lldif-synthetic-low-light-s0 --steps 1,2,4,8
    """
    import shlex

    from lldif_bench.errors import UserError
    from lldif_bench.imageio import atomic_write_bytes
    from lldif_bench.reports.steps import sweep_steps

    try:
        values = [int(s) for s in steps.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--steps {steps!r}: give comma-separated integers, e.g. 1,2,4,8") from None
    frame = sweep_steps(run_dir, values, shlex.split(run_args))
    out = out or run_dir.parent / f"steps-{run_dir.name}.csv"
    atomic_write_bytes(out, frame.to_csv(index=False, float_format="%.4f").encode())
    click.echo(frame.round(2).to_string(index=False))
    click.echo(f"wrote {out}")
