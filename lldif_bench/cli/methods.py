"""``lldif-bench methods``: the registered FER methods, one line each."""

from __future__ import annotations

import click


@click.command("methods")
def command() -> None:
    """List the methods `lldif-bench run --method` accepts."""
    from lldif_bench.methods import load_all_methods
    from lldif_bench.training.engine import method_stages

    registry = load_all_methods()
    width = max((len(e.name) for e in registry), default=0)
    for entry in registry:
        stages = method_stages(entry.obj)
        extra = f"  [stages: {', '.join(s['name'] for s in stages)}]" if len(stages) > 1 else ""
        click.echo(f"{entry.name:<{width}}  {entry.help}{extra}")
