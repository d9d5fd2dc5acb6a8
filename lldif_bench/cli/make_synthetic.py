"""``lldif-bench make-dataset synthetic``: write the built-in synthetic FER dataset (RAF-DB layout)."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from lldif_bench.cli.common import resolved, seed_option
from lldif_bench.errors import UserError
from lldif_bench.synthetic.writer import (
    MAX_IMAGES,
    MAX_SIZE,
    MIN_IMAGES,
    MIN_SIZE,
    generate_synthetic,
)

CLEAR_DIR = "clear"


@click.command("synthetic")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Output folder; the clear images go to OUT/clear in RAF-DB's 'basic' layout.")
@click.option("--num-images", type=click.IntRange(MIN_IMAGES, MAX_IMAGES), default=700, show_default=True,
              help="Total images, split 80/20 into train/test with RAF-DB's class imbalance.")
@click.option("--size", type=click.IntRange(MIN_SIZE, MAX_SIZE), default=100, show_default=True,
              help="Image side in pixels (RAF-DB aligned faces are 100).")
@seed_option
@click.option("--overwrite", is_flag=True,
              help="Allow a non-empty OUT: replaces OUT/clear; other files in OUT are left alone.")
@click.pass_context
def command(ctx: click.Context, out: Path, num_images: int, size: int, seed: int | None, overwrite: bool) -> None:
    """Render a synthetic facial-expression dataset: the 7 basic expressions built from facial
    action units, with varied identities, poses, lighting and backgrounds, and ground-truth
    68-point landmarks (OUT/clear/landmarks.npz). The same seed gives byte-identical files.

    \b
    Example:
      lldif-bench make-dataset synthetic --out data/synthetic --num-images 700
    """
    seed = resolved(ctx, "seed", seed)
    seed = 0 if seed is None else seed
    if out.exists() and not out.is_dir():
        raise click.ClickException(f"--out {out} is a file, not a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise click.ClickException(
                f"--out {out} is not empty; pass --overwrite to replace {out / CLEAR_DIR} "
                f"(other files there are kept), or choose another folder")
        shutil.rmtree(out / CLEAR_DIR, ignore_errors=False) if (out / CLEAR_DIR).exists() else None
    try:
        summary = generate_synthetic(out / CLEAR_DIR, num_images=num_images, size=size, seed=seed)
    except UserError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {summary['num_train']} train + {summary['num_test']} test images "
               f"({size}x{size}, seed {seed}) to {out / CLEAR_DIR}")
    click.echo(f"  {'class':<10} {'train':>6} {'test':>6}")
    for name in summary["train"]:
        click.echo(f"  {name:<10} {summary['train'][name]:>6} {summary['test'][name]:>6}")
