"""``lldif-bench info``: versions, device and which optional backends/weights work offline."""

from __future__ import annotations

import importlib.metadata
import platform

import click

from lldif_bench import __version__

PACKAGES = ("torch", "torchvision", "kornia", "numpy", "opencv-python", "pandas",
            "face-alignment", "safetensors")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@click.command("info")
def command() -> None:
    """Print versions, the compute device, and which optional backends and pretrained weights
    are available offline (and how to get the missing ones)."""
    import torch

    from lldif_bench.availability import run_checks

    click.echo(f"lldif-bench {__version__}  (Python {platform.python_version()}, {platform.platform()})")
    for dist in PACKAGES:
        click.echo(f"  {dist:<24} {_version(dist)}")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        click.echo(f"device: cuda ({names})")
    else:
        click.echo(f"device: cpu ({torch.get_num_threads()} threads; no CUDA device visible)")
    click.echo("optional backends and weights:")
    for name, ok, detail in run_checks():
        click.echo(f"  [{'x' if ok else ' '}] {name}: {detail}")
