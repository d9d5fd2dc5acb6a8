"""``lldif-bench plot distribution``: Figure 4, class distribution clear vs low-light."""

from __future__ import annotations

from pathlib import Path

import click

from lldif_bench.datasets.distribution import class_distribution, plot_distributions


@click.command("distribution")
@click.argument("datasets", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("fig4.png"), show_default=True,
              help="Output image (png/pdf/svg by suffix).")
def distribution(datasets: tuple[Path, ...], out: Path) -> None:
    """Figure 4: images per class and split, clear vs low-light side by side.

    Each DATASET is a source dataset or a low-light copy made by make-dataset (a copy also shows
    its source's counts).

    \b
    Example:
      lldif-bench plot distribution /data/LL-RAF-DB --out fig4.png
    """
    dists = [class_distribution(d) for d in datasets]
    for d in dists:
        for split, counts in d.clear.items():
            low = d.lowlight.get(split, {}) if d.lowlight else None
            click.echo(f"{d.name} {split}: clear {sum(counts.values())}"
                       + (f", low-light {sum(low.values())}" if low is not None else ""))
    click.echo(f"wrote {plot_distributions(dists, out)}")
