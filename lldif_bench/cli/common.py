"""Options and helpers shared by the CLI commands (the CLI stays thin: parse, call, print)."""

from __future__ import annotations

import logging

import click

from lldif_bench.device import DEVICE_CHOICES

log = logging.getLogger("lldif_bench")


def device_option(f):
    return click.option(
        "--device", type=click.Choice(DEVICE_CHOICES, case_sensitive=False), default=None,
        help="Where tensors go: auto (CUDA if present, else CPU), cpu or cuda. "
             "Defaults to the group's --device.")(f)


def seed_option(f):
    return click.option("--seed", type=int, default=None,
                        help="Random seed; the same seed gives byte-identical output. "
                             "Defaults to the group's --seed (0).")(f)


def revision_option(f):
    """``--revision N``: the synthetic generator revision (``lldif_bench.synthetic.revisions``)."""
    from lldif_bench.synthetic.revisions import DEFAULT_REVISION, REVISIONS

    described = "; ".join(f"{e.name}: {e.help}" for e in REVISIONS)
    return click.option(
        "--revision", type=click.Choice(REVISIONS.names()), default=str(DEFAULT_REVISION), show_default=True,
        callback=lambda ctx, param, value: int(value),
        help="Synthetic generator revision (recorded in synthetic.json; an older one reproduces its files "
             f"byte for byte). {described}")(f)


def no_progress_option(f):
    return click.option("--no-progress", is_flag=True,
                        help="No progress bars (for logs and batch jobs; the summary still prints).")(f)


def resolved(ctx: click.Context, name: str, value):
    """A command's own option value, else the group-level one."""
    if value is not None:
        return value
    return (ctx.find_root().obj or {}).get(name)
