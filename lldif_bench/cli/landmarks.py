"""``lldif-bench landmarks``: compute (or recompute) the landmark file of an existing dataset."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lldif_bench.cli.common import device_option, no_progress_option, resolved
from lldif_bench.errors import UserError


def open_dataset_dir(path: Path):
    """The dataset adapter for ``path`` (``lldif_bench.datasets.open_dataset`` when present, else
    the first registered adapter whose layout matches)."""
    if not path.is_dir():
        raise UserError(f"{path} is not a folder")
    try:
        from lldif_bench.datasets import open_dataset
    except ImportError:
        open_dataset = None
    if open_dataset is not None:
        return open_dataset(path)
    from lldif_bench.datasets.base import ADAPTERS

    for entry in ADAPTERS:
        if entry.obj.detect(path):
            return entry.obj(path)
    raise UserError(f"{path} is not a dataset folder any adapter recognises "
                    f"({', '.join(ADAPTERS.names()) or 'no adapters installed'})")


@click.command("landmarks")
@click.argument("dataset_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--backend", default="auto", show_default=True,
              help="face-alignment (2D-FAN; needs its weight files), dlib (offline extra), synthetic "
                   "(ground truth of the built-in synthetic set), auto (face-alignment, else dlib).")
@click.option("--source", type=click.Choice(["lowlight", "clear"]), default="lowlight", show_default=True,
              help="Detect on the dataset's own (low-light) images, or on the clear source images "
                   "(needs --clear-dir). Recorded in dataset.json.")
@click.option("--clear-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The clear dataset the low-light copy was made from (for --source clear).")
@click.option("--whole-crop/--detect", "whole_crop", default=None,
              help="Use the whole crop as the face box (aligned crops), or run the face detector. "
                   "Default: what the dataset adapter says (aligned datasets use the whole crop).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Images per backend call.")
@click.option("--overwrite", is_flag=True, help="Replace an existing landmarks.npz.")
@device_option
@no_progress_option
@click.pass_context
def command(ctx, dataset_dir: Path, backend: str, source: str, clear_dir: Path | None,
            whole_crop: bool | None, batch_size: int, overwrite: bool, device: str | None,
            no_progress: bool) -> None:
    """Detect 68 facial landmarks for every image of DATASET_DIR and store them once in
    DATASET_DIR/landmarks.npz (keyed like manifest.csv), for DLNet and POSTER++.

    \b
    Examples:
      lldif-bench landmarks data/LL-RAF-DB --backend dlib
      lldif-bench landmarks data/syn/lowlight --backend synthetic
      lldif-bench landmarks data/LL-KDEF --backend auto --source clear --clear-dir data/KDEF

    Detector misses fall back to the dataset's mean shape and are counted in the summary.
    """
    from lldif_bench.landmarks import extract_landmarks_for_dataset

    dataset = open_dataset_dir(dataset_dir)
    clear = open_dataset_dir(clear_dir) if clear_dir is not None else None
    summary = extract_landmarks_for_dataset(
        dataset_dir, dataset, backend=backend, source=source, clear_dataset=clear, whole_crop=whole_crop,
        device=resolved(ctx, "device", device), batch_size=batch_size, overwrite=overwrite,
        progress=not no_progress)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary["counts"].items()))
    used = summary["backend"] + (" (chosen by auto)" if summary["requested_backend"] == "auto" else "")
    click.echo(f"{summary['num_images']} images, backend {used}, source {summary['source']}, "
               f"{'whole crop' if summary['whole_crop'] else 'face detector'}: {counts}")
    click.echo(f"detector misses: {summary['detector_misses']} ({100 * summary['miss_rate']:.1f}%), "
               f"{summary['landmarks_per_s']} images/s -> {dataset_dir / summary['file']}")
    if ctx.find_root().obj and ctx.find_root().obj.get("verbose"):
        click.echo(json.dumps(summary, indent=2))
