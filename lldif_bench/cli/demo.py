"""``lldif-bench demo``: synthetic data → low-light copy → training → leaderboard, offline."""

from __future__ import annotations

from pathlib import Path

import click

from lldif_bench.cli.common import device_option, no_progress_option, resolved, revision_option, seed_option
from lldif_bench.demo import DEFAULT_METHODS, DEMO_NUM_IMAGES, DEMO_RECIPE


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo"), show_default=True,
              help="Folder for the data, the runs and the leaderboard (reused: an interrupted demo resumes).")
@click.option("--methods", default=",".join(DEFAULT_METHODS), show_default=True,
              help="Comma-separated methods to train (see `lldif-bench methods`), or 'all'.")
@click.option("--num-images", type=click.IntRange(28, 45000), default=DEMO_NUM_IMAGES, show_default=True,
              help="Size of the synthetic dataset (80% train, 20% test).")
@click.option("--epochs", type=click.IntRange(1, 1000), default=None,
              help=f"Training epochs per run [default: {DEMO_RECIPE['epochs']}, the README's difficulty "
                   "calibration; more epochs take proportionally longer].")
@revision_option
@seed_option
@device_option
@no_progress_option
@click.pass_context
def command(ctx: click.Context, out: Path, methods: str, num_images: int, epochs: int | None, revision: int,
            seed: int | None, device: str | None, no_progress: bool) -> None:
    """Run the whole pipeline on the built-in synthetic dataset and print a leaderboard:
    render faces, darken them with the `realistic` preset (the paper's Lightroom
    adjustments plus sensor noise and JPEG), train each method on the clear and the
    low-light copy with one small CPU recipe, and compare. Needs no download and no GPU
    (about 11 minutes on 2 CPU cores with the default ResNet-18).

    \b
    Afterwards:
      lldif-bench report --runs demo/runs --table all --format md
    """
    from lldif_bench.demo import run_demo
    from lldif_bench.methods import load_all_methods

    chosen = tuple(load_all_methods().names()) if methods.strip() == "all" else tuple(
        m.strip() for m in methods.split(",") if m.strip())
    result = run_demo(out, methods=chosen, num_images=num_images, seed=resolved(ctx, "seed", seed) or 0,
                      device=resolved(ctx, "device", device) or "auto", epochs=epochs, revision=revision,
                      progress=not no_progress)
    click.echo("")
    click.echo(result.table.to_markdown(index=False))
    click.echo(f"\nwrote {out / 'leaderboard.csv'} and {out / 'leaderboard.md'}; runs in {out / 'runs'}")
    click.echo(f"full tables: lldif-bench report --runs {out / 'runs'} --table all --format md")
