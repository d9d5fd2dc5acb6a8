"""``lldif-bench degrade``: apply a low-light preset to loose images and folders."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lldif_bench.cli.common import device_option, no_progress_option, resolved, seed_option


@click.command("degrade")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Output folder; each image keeps its path relative to the folder given.")
@click.option("--preset", default="paper", show_default=True,
              help="Built-in preset name (see `lldif-bench presets`) or a .yaml/.json/.xmp file.")
@seed_option
@click.option("--image-format", type=click.Choice(["same", "png", "jpg"]), default="same",
              show_default=True, help="Output format: keep each input's, or convert all.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True,
              help="Images per batch (same-size images are batched together).")
@device_option
@no_progress_option
@click.pass_context
def command(ctx: click.Context, inputs: tuple[Path, ...], out: Path, preset: str, seed: int | None,
            image_format: str, batch_size: int, device: str | None, no_progress: bool) -> None:
    """Write low-light copies of INPUTS (image files or folders, searched recursively) into OUT.

    Parameters are drawn per image from (seed, relative path): the same seed gives byte-identical
    files whatever the batch size. Undecodable images are skipped and counted. OUT gets
    degrade-run.json and degrade-manifest.jsonl (every image's parameters).

    \b
    Examples:
      lldif-bench degrade faces/ --out faces_dark --preset paper --seed 1
      lldif-bench degrade a.jpg b.png --out dark --preset my_lightroom_preset.xmp --image-format png
    """
    from degradations import load_preset
    from degradations.files import degrade_files
    from lldif_bench.device import resolve_device
    from lldif_bench.errors import UserError

    seed = resolved(ctx, "seed", seed) or 0
    try:
        dev = resolve_device(resolved(ctx, "device", device))
    except RuntimeError as err:
        raise UserError(str(err)) from None
    p = load_preset(preset)
    report = degrade_files(inputs, out, p, seed=seed, image_format=image_format, device=dev,
                           batch_size=batch_size, progress=sys.stderr.isatty() and not no_progress)
    click.echo(f"wrote {report.written} image(s) to {out} with preset {p.name!r} (seed {seed}, {dev})")
    if report.skipped:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(report.skipped.items()))
        click.echo(f"skipped {sum(report.skipped.values())} image(s): {reasons} "
                   f"(details in {out / 'degrade-run.json'})")
    if report.written == 0:
        raise click.ClickException("no image was written")
