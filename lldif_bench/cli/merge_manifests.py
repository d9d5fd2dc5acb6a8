"""``lldif-bench merge-manifests OUT [PART_DIR...]``: join the shards of a make-dataset build."""

from __future__ import annotations

from pathlib import Path

import click

from lldif_bench.cli.common import no_progress_option
from lldif_bench.datasets.build import merge_shards


@click.command("merge-manifests")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.argument("parts", nargs=-1, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--landmarks", default="none", show_default=True,
              help="Landmark backend to run on the merged copy, or 'none'.")
@no_progress_option
@click.pass_context
def command(ctx: click.Context, out: Path, parts: tuple[Path, ...], landmarks: str, no_progress: bool) -> None:
    """Finish a build made with `make-dataset … --shard I/N`.

    OUT is the shared output folder. If the shards ran on machines with separate disks, list their
    output folders as PART_DIR: their files are copied into OUT first. Needs every part
    (manifest.part-I-of-N.csv) and the source dataset (for label files and the FER2013 CSV).
    """
    line = " ".join([ctx.command_path, str(out), *map(str, parts)])
    summary = merge_shards(out, list(parts), command_line=line, landmarks=landmarks, progress=not no_progress)
    click.echo(summary.format())
