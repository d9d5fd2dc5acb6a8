"""``lldif-bench presets``: list the degradation presets or show one fully resolved."""

from __future__ import annotations

import click
import yaml


@click.command("presets")
@click.argument("name", required=False)
def command(name: str | None) -> None:
    """List the built-in degradation presets, or show NAME (a built-in or a .yaml/.json/.xmp
    file) with its resolved ranges and options.

    \b
    Examples:
      lldif-bench presets
      lldif-bench presets realistic
      lldif-bench presets my_lightroom_preset.xmp
    """
    from degradations import BUILTIN_PRESETS, load_preset

    if name is None:
        click.echo("built-in presets (lldif-bench presets NAME shows one):")
        for entry in BUILTIN_PRESETS:
            preset = load_preset(entry.name)
            click.echo(f"  {entry.name:<12} [{preset.flavor}] {entry.help}")
        click.echo("A preset can also be a .yaml/.json file of ranges or a Lightroom .xmp preset.")
        return
    preset = load_preset(name)
    click.echo(yaml.safe_dump(preset.to_dict(), sort_keys=False, default_flow_style=None).rstrip())
