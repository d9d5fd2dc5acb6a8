"""``lldif-bench reproduce``: run every method/variant a paper table needs, then write the table."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from lldif_bench.cli.common import device_option, resolved


@click.command("reproduce")
@click.option("--table", "table", type=click.Choice(("1", "2", "3", "4", "5")), required=True,
              help="1 = clear RAF-DB/FERPlus/KDEF, 2-4 = LL-RAF-DB/LL-FERPlus/LL-KDEF, 5 = ablation V1-V4.")
@click.option("--data", "data", multiple=True,
              help="Dataset folder: DIR when the table has one dataset, else KEY=DIR per dataset "
                   "(rafdb=…, ferplus=…, kdef=…). Tables 2-5 want the low-light copy.")
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"),
              show_default=True)
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds, e.g. 0,1,2.")
@click.option("--dry-run", is_flag=True,
              help="Print the plan and the estimated cost; run nothing (only the throughput cache is written).")
@click.option("--measure/--no-measure", default=True, show_default=True,
              help="Measure each method's training img/s (cached in RUNS/throughput.json) for the estimate.")
@click.option("--throughput-batch", type=int, default=8, show_default=True,
              help="Batch size of the throughput measurement.")
@click.option("--run-args", default="", help="Extra arguments for every 'lldif-bench run', e.g. '--amp'.")
@click.option("--aggregate", type=click.Choice(("mean", "best")), default="mean", show_default=True,
              help="Over seeds: mean ± sample std with n, or the best run.")
@click.option("--lldif-config", default=None,
              help="Run config of every LLDif run: a shipped name (cpu, tiny, V1…) or a YAML file; "
                   "Table 5's variants are written as this config plus the variant [paper's base preset].")
@device_option
@click.pass_context
def command(ctx, table: str, data: tuple[str, ...], runs_dir: Path, seeds: str, dry_run: bool, measure: bool,
            throughput_batch: int, run_args: str, aggregate: str, lldif_config: str | None,
            device: str | None) -> None:
    """Run every method (or LLDif variant) that a paper table needs with each method's paper
    settings, skipping finished runs and resuming interrupted ones, then write the table
    (RUNS/table<N>.md and .csv).

    \b
    Examples:
      lldif-bench reproduce --table 2 --data data/ll-rafdb --dry-run
      lldif-bench reproduce --table 1 --data rafdb=data/raf --data ferplus=data/ferplus --data kdef=data/kdef
      lldif-bench reproduce --table 5 --data data/ll-kdef --seeds 0,1,2
      lldif-bench reproduce --table 5 --data demo/data/lowlight --lldif-config cpu --seeds 0,1,2
    """
    from lldif_bench.device import resolve_device
    from lldif_bench.errors import UserError
    from lldif_bench.reports.reproduce import (
        execute_plan,
        format_plan,
        parse_data_options,
        plan_table,
    )
    from lldif_bench.reports.tables import get_table

    spec = get_table(table)
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds {seeds!r}: give comma-separated integers") from None
    data_dirs = parse_data_options(data, spec)
    missing = [d for d in spec.datasets if d not in data_dirs]
    if missing and not dry_run:
        raise UserError(f"Table {table} needs --data for {', '.join(missing)}")
    measure_on = str(resolve_device(resolved(ctx, "device", device) or "auto"))
    plan = plan_table(int(table), data_dirs, runs_dir, seed_list, device=device,
                      extra_args=shlex.split(run_args), measure=measure, throughput_device=measure_on,
                      throughput_batch=throughput_batch, lldif_config=lldif_config)
    click.echo(format_plan(plan, measure_on if measure else None))
    if dry_run:
        return
    written = execute_plan(plan, runs_dir, int(table), aggregate)
    for path in written:
        click.echo(f"wrote {path}")
