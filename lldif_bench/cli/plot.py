"""``lldif-bench plot``: figures. A click group; each figure is a subcommand."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("plot")
def command() -> None:
    """Draw the paper's figures from images or run results (one subcommand per figure)."""


@command.command("histogram")
@click.argument("clear", type=click.Path(path_type=Path))
@click.argument("lowlight", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("fig1.png"),
              show_default=True, help="Output image (png/pdf/svg by suffix).")
def histogram(clear: Path, lowlight: Path, out: Path) -> None:
    """Figure 1: per-channel and luminance histograms of CLEAR vs LOWLIGHT (each an image file or
    a folder, searched recursively); prints each set's mean and median.

    \b
    Example:
      lldif-bench plot histogram data/syn/clear data/syn/lowlight --out fig1.png
    """
    from degradations.histogram import histograms, plot_histograms

    sets = [histograms(lowlight, f"low-light ({lowlight.name})"), histograms(clear, f"clear ({clear.name})")]
    for hs in sets:
        for line in hs.summary_lines():
            click.echo(line)
    plot_histograms(sets, out)
    click.echo(f"wrote {out}")


from lldif_bench.cli import plot_results  # noqa: F401  (registers tsne, confidence, diffusion-steps, iterations)
from lldif_bench.cli.plot_distribution import distribution

command.add_command(distribution)
