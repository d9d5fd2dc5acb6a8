"""``lldif-bench plot tsne|confidence|diffusion-steps|iterations``: Figs. 5–8 from runs or files.

Registered into the ``plot`` group of :mod:`lldif_bench.cli.plot`. Every subcommand accepts either
ready files (features ``.npz``, ``predictions.csv``, EPD ``.npz``, iterations CSV) or trained runs plus
data folders, in which case the evidence is computed (and cached in the run directory) first.
"""

from __future__ import annotations

from pathlib import Path

import click

from lldif_bench.cli.common import device_option, resolved, seed_option
from lldif_bench.cli.plot import command as plot_group
from lldif_bench.errors import UserError

CONDITIONS = ("clear", "low-light")


def _labelled_path(spec: str, what: str) -> tuple[str | None, str | None, Path]:
    """``METHOD@CONDITION=PATH`` / ``METHOD=PATH`` / ``PATH`` → (method, condition, path)."""
    if "=" not in spec:
        return None, None, Path(spec)
    label, path = spec.split("=", 1)
    method, _, condition = label.partition("@")
    if condition and condition not in CONDITIONS:
        raise UserError(f"{what} {spec!r}: condition must be one of {', '.join(CONDITIONS)}")
    return method or None, condition or None, Path(path)


def _data_specs(specs: tuple[str, ...]) -> list[tuple[str, Path]]:
    """``CONDITION=DIR`` pairs (``--data clear=data/kdef --data low-light=data/ll-kdef``)."""
    out = []
    for spec in specs:
        condition, sep, path = spec.partition("=")
        if not sep or condition not in CONDITIONS:
            raise UserError(f"--data {spec!r}: write CONDITION=DIR with CONDITION in {', '.join(CONDITIONS)}")
        out.append((condition, Path(path)))
    return out


def _echo_written(paths) -> None:
    for path in paths:
        click.echo(f"wrote {path}")


run_option = click.option("--run", "runs", multiple=True, type=click.Path(path_type=Path),
                          help="A finished run directory (repeatable).")
out_option = click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
                          help="Output figure; PNG and PDF are written beside each other.")
batch_option = click.option("--batch-size", type=int, default=128, show_default=True)


def _per_run_and_condition(evaluate, runs, data, device, batch_size) -> list:
    """``evaluate(run, data_dir, condition, …)`` for every --run and every --data CONDITION=DIR."""
    pairs = _data_specs(data)
    if not pairs:
        raise UserError("--run needs at least one --data CONDITION=DIR")
    return [evaluate(run, data_dir, condition, device=device, batch_size=batch_size)
            for run in runs for condition, data_dir in pairs]


@plot_group.command("tsne")
@click.option("--features", "feature_files", multiple=True,
              help="Features .npz, optionally labelled METHOD@CONDITION=FILE (repeatable).")
@run_option
@click.option("--data", "data", multiple=True,
              help="With --run: CONDITION=DIR, e.g. clear=data/raf --data low-light=data/ll-raf.")
@click.option("--max-points", type=int, default=2000, show_default=True, help="Subsample per panel.")
@out_option
@batch_option
@device_option
@seed_option
@click.pass_context
def tsne(ctx, feature_files, runs, data, max_points, out, batch_size, device, seed) -> None:
    """Figure 5: t-SNE of penultimate features, one row per method, clear vs low-light columns.

    \b
    Examples:
      lldif-bench plot tsne --run runs/lldif-rafdb-low-light-s0 --run runs/scn-rafdb-low-light-s0 \\
          --data clear=data/rafdb --data low-light=data/ll-rafdb --out fig5.png
      lldif-bench plot tsne --features LLDif@clear=a.npz --features LLDif@low-light=b.npz --out fig5.png
    """
    from lldif_bench.reports import evidence, figures

    panels = []
    for spec in feature_files:
        method, condition, path = _labelled_path(spec, "--features")
        panels.append(evidence.feature_panel(path, method, condition))
    if runs:
        from lldif_bench.reports.evaluate import run_features

        panels += _per_run_and_condition(run_features, runs, data, resolved(ctx, "device", device), batch_size)
    if not panels:
        raise UserError("give --features FILE or --run RUN with --data CONDITION=DIR")
    _echo_written(figures.plot_tsne_grid(panels, out, seed=resolved(ctx, "seed", seed), max_points=max_points))


@plot_group.command("confidence")
@click.option("--predictions", "prediction_files", multiple=True,
              help="predictions.csv labelled METHOD@CONDITION=FILE (repeatable).")
@run_option
@click.option("--data", "data", multiple=True, help="With --run: CONDITION=DIR (repeatable).")
@out_option
@batch_option
@device_option
@click.pass_context
def confidence(ctx, prediction_files, runs, data, out, batch_size, device) -> None:
    """Figure 6: confidence-score distributions per method on clear vs low-light images, with the
    mean confidence and the accuracy.

    \b
    Example:
      lldif-bench plot confidence --run runs/dan-kdef-low-light-s0 --run runs/lldif-kdef-low-light-s0 \\
          --data clear=data/kdef --data low-light=data/ll-kdef --out fig6.png
    """
    from lldif_bench.reports import evidence, figures

    sets = []
    for spec in prediction_files:
        method, condition, path = _labelled_path(spec, "--predictions")
        if method is None or condition is None:
            raise UserError(f"--predictions {spec!r}: label it METHOD@CONDITION=FILE")
        sets.append(evidence.confidence_set(path, method, condition))
    if runs:
        from lldif_bench.reports.evaluate import run_confidence

        sets += _per_run_and_condition(run_confidence, runs, data, resolved(ctx, "device", device), batch_size)
    if not sets:
        raise UserError("give --predictions METHOD@CONDITION=FILE or --run RUN with --data CONDITION=DIR")
    for s in sets:
        click.echo(f"{s.method:<20} {s.condition:<10} n={len(s.confidence):<6} mean confidence "
                   f"{s.confidence.mean():.3f}  accuracy {s.correct.mean():.3f}")
    _echo_written(figures.plot_confidence(sets, out))


@plot_group.command("diffusion-steps")
@click.option("--embeddings", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="EPD .npz (steps, embeddings, labels) written earlier.")
@click.option("--run", "run", type=click.Path(path_type=Path), default=None, help="A finished LLDif run.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="With --run: the dataset folder whose test split is embedded.")
@click.option("--max-points", type=int, default=2000, show_default=True)
@out_option
@batch_option
@device_option
@seed_option
@click.pass_context
def diffusion_steps(ctx, embeddings, run, data_dir, max_points, out, batch_size, device, seed) -> None:
    """Figure 7: t-SNE of the denoised EPD Z_t at every reverse diffusion step (t = T … 0).

    \b
    Example:
      lldif-bench plot diffusion-steps --run runs/lldif-rafdb-low-light-s0 --data data/ll-rafdb --out fig7.png
    """
    from lldif_bench.reports import evidence, figures

    if embeddings is not None:
        steps, labels = evidence.read_step_embeddings(embeddings)
    elif run is not None and data_dir is not None:
        from lldif_bench.reports.evaluate import run_epd_steps

        steps, labels, cache = run_epd_steps(run, data_dir, device=resolved(ctx, "device", device),
                                             batch_size=batch_size, seed=resolved(ctx, "seed", seed))
        click.echo(f"EPD at steps {sorted(steps)} cached in {cache}")
    else:
        raise UserError("give --embeddings FILE.npz, or --run LLDIF_RUN with --data DIR")
    _echo_written(figures.plot_diffusion_steps(steps, labels, out, seed=resolved(ctx, "seed", seed),
                                               max_points=max_points))


@plot_group.command("iterations")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV with columns iterations, accuracy.")
@click.option("--run", "run", type=click.Path(path_type=Path), default=None, help="A finished LLDif run.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="With --run: the dataset folder whose test split is evaluated.")
@click.option("--iterations", "iterations", default="1,2,3,4,5,6,7,8,9,10,50", show_default=True,
              help="Comma-separated T values to evaluate the trained model at.")
@out_option
@batch_option
@device_option
@click.pass_context
def iterations_cmd(ctx, csv_path, run, data_dir, iterations, out, batch_size, device) -> None:
    """Figure 8: accuracy vs the number of diffusion iterations T, from one trained LLDif evaluated
    at each T (the CSV is written beside the figure).

    \b
    Example:
      lldif-bench plot iterations --run runs/lldif-kdef-low-light-s0 --data data/ll-kdef --out fig8.png
    """
    from lldif_bench.reports import evidence, figures

    if csv_path is not None:
        its, acc = evidence.read_iterations(csv_path)
    elif run is not None and data_dir is not None:
        from lldif_bench.reports.evaluate import run_iterations

        try:
            wanted = [int(v) for v in iterations.split(",") if v.strip()]
        except ValueError:
            raise UserError(f"--iterations {iterations!r}: give comma-separated integers") from None
        its, acc = run_iterations(run, data_dir, wanted, device=resolved(ctx, "device", device),
                                  batch_size=batch_size)
        table = Path(out).with_suffix(".csv")
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text("iterations,accuracy\n" + "".join(f"{t},{a:.4f}\n" for t, a in zip(its, acc)))
        click.echo(f"wrote {table}")
    else:
        raise UserError("give --csv FILE, or --run LLDIF_RUN with --data DIR")
    for t, a in zip(its, acc):
        click.echo(f"T={t:<3} accuracy {a:.2f}%")
    _echo_written(figures.plot_iterations(its, acc, out))
