"""The ``lldif-bench`` command group. Each command lives in its own module in this package."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from lldif_bench import __version__
from lldif_bench.device import DEVICE_CHOICES, flush_cpu_subnormals
from lldif_bench.errors import UserError
from lldif_bench.registry import RegistryError

# Command modules, each exposing ``command`` (a click command). Order = order in --help.
COMMAND_MODULES = (
    "lldif_bench.cli.info",
    "lldif_bench.cli.demo",
    "lldif_bench.cli.make_dataset",
    "lldif_bench.cli.merge_manifests",
    "lldif_bench.cli.degrade",
    "lldif_bench.cli.presets",
    "lldif_bench.cli.plot",
    "lldif_bench.cli.landmarks",
    "lldif_bench.cli.run",
    "lldif_bench.cli.methods",
    "lldif_bench.cli.predict",
    "lldif_bench.cli.report",
    "lldif_bench.cli.reproduce",
    "lldif_bench.cli.sweep",
)


class _Group(click.Group):
    """Turns the library's user-facing errors into a one-line message and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (UserError, RegistryError, FileNotFoundError) as err:
            raise click.ClickException(str(err)) from None

    def list_commands(self, ctx):
        return list(self.commands)  # registration order, not alphabetical


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="lldif-bench")
@click.option("--device", type=click.Choice(DEVICE_CHOICES, case_sensitive=False), default="auto",
              show_default=True, help="Default device for every command: auto = CUDA when present.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Default random seed for every command.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, device: str, seed: int, verbose: int) -> None:
    """lldif-bench: build low-light copies of FER datasets and benchmark FER methods on them.

    \b
    Typical session:
      lldif-bench demo                                   # synthetic data -> leaderboard, offline
      lldif-bench make-dataset synthetic --out data/syn  # a RAF-DB-layout synthetic dataset
      lldif-bench info                                   # versions, device, optional backends

    Every command has its own --help.
    """
    level = logging.WARNING - 10 * min(verbose + 1, 2)  # default INFO, -v DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    flush_cpu_subnormals()  # before any torch worker thread exists, so that they all inherit it
    ctx.obj = {"device": device, "seed": seed, "verbose": verbose}


for _module in COMMAND_MODULES:
    main.add_command(importlib.import_module(_module).command)


if __name__ == "__main__":  # python -m lldif_bench.cli.main …
    main()
