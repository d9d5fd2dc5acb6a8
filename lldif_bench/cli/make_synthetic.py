"""``lldif-bench make-dataset synthetic``: write the built-in synthetic FER dataset (RAF-DB layout)."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from lldif_bench.cli.common import device_option, no_progress_option, resolved, revision_option, seed_option
from lldif_bench.errors import UserError
from lldif_bench.synthetic.pair import CLEAR_DIR, LOWLIGHT_DIR, make_synthetic_pair
from lldif_bench.synthetic.writer import MAX_IMAGES, MAX_SIZE, MIN_IMAGES, MIN_SIZE


@click.command("synthetic")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Output folder; the clear images go to OUT/clear in RAF-DB's 'basic' layout.")
@click.option("--num-images", type=click.IntRange(MIN_IMAGES, MAX_IMAGES), default=700, show_default=True,
              help="Total images, split 80/20 into train/test with RAF-DB's class imbalance.")
@click.option("--size", type=click.IntRange(MIN_SIZE, MAX_SIZE), default=100, show_default=True,
              help="Image side in pixels (RAF-DB aligned faces are 100).")
@click.option("--preset", default="paper", show_default=True,
              help="Degradation preset for OUT/lowlight (see `lldif-bench presets`). The demo and the README's "
                   "difficulty calibration use `realistic`: on these noise-free renders `paper` alone is "
                   "nearly an invertible brightness change.")
@click.option("--lowlight/--no-lowlight", default=True, show_default=True,
              help="Also write the low-light copy to OUT/lowlight.")
@click.option("--workers", type=click.IntRange(0, 64), default=2, show_default=True,
              help="Decode/encode worker processes for the low-light copy.")
@revision_option
@seed_option
@device_option
@click.option("--overwrite", is_flag=True,
              help="Allow a non-empty OUT: replaces OUT/clear and OUT/lowlight; other files are left alone.")
@no_progress_option
@click.pass_context
def command(ctx: click.Context, out: Path, num_images: int, size: int, preset: str, lowlight: bool,
            workers: int, revision: int, seed: int | None, device: str | None, overwrite: bool,
            no_progress: bool) -> None:
    """Render a synthetic facial-expression dataset: the 7 basic expressions built from facial
    action units, with varied identities, poses, lighting and backgrounds, and ground-truth
    68-point landmarks (OUT/clear/landmarks.npz), then its low-light copy (OUT/lowlight, the
    `paper` preset; same layout, plus manifest.csv, dataset.json and the landmarks). The same
    seed gives byte-identical files.

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
                f"--out {out} is not empty; pass --overwrite to replace {out / CLEAR_DIR} and "
                f"{out / LOWLIGHT_DIR} (other files there are kept), or choose another folder")
        for part in (CLEAR_DIR, LOWLIGHT_DIR):
            if (out / part).exists():
                shutil.rmtree(out / part)
    try:
        summary, built = make_synthetic_pair(out, num_images=num_images, size=size, seed=seed, revision=revision,
                                             preset=preset,
                                             device=resolved(ctx, "device", device), workers=workers,
                                             lowlight=lowlight, progress=not no_progress)
    except UserError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {summary['num_train']} train + {summary['num_test']} test images "
               f"({size}x{size}, seed {seed}, generator revision {revision}) to {out / CLEAR_DIR}")
    click.echo(f"  {'class':<10} {'train':>6} {'test':>6}")
    for name in summary["train"]:
        click.echo(f"  {name:<10} {summary['train'][name]:>6} {summary['test'][name]:>6}")
    if built is not None:
        click.echo(built.format())
