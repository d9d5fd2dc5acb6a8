"""``lldif-bench predict``: label-free predictions of a finished run on images or folders."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lldif_bench.cli.common import device_option, resolved


@click.command("predict")
@click.option("--run", "run_dir", required=True, type=click.Path(path_type=Path),
              help="A run folder made by `lldif-bench run`.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--landmarks", default=None, help="Landmark backend for methods that need landmarks [auto].")
@click.option("--weights", type=click.Choice(["last", "best"]), default="last", show_default=True,
              help="Final-epoch weights, or the test-selected best epoch's.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="CSV file to write [stdout].")
@device_option
@click.pass_context
def command(ctx, run_dir, inputs, landmarks, weights, batch_size, out, device) -> None:
    """Predict the emotion of every image in INPUTS (files or folders); needs no labels."""
    from lldif_bench.imageio import atomic_write_bytes
    from lldif_bench.training.predict import predict_images

    df = predict_images(run_dir, inputs, landmarks=landmarks, device=resolved(ctx, "device", device),
                        batch_size=batch_size, weights=weights)
    text = df.to_csv(index=False)
    if out:
        atomic_write_bytes(out, text.encode())
        click.echo(f"wrote {len(df)} predictions to {out}", err=True)
    else:
        sys.stdout.write(text)
