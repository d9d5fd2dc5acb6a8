"""``lldif-bench report``: Tables 1–5 from the leaderboard, our numbers beside the paper's."""

from __future__ import annotations

from pathlib import Path

import click

TABLE_CHOICES = ("1", "2", "3", "4", "5", "all")


@click.command("report")
@click.option("--runs", "runs_dirs", type=click.Path(path_type=Path), multiple=True, default=(Path("runs"),),
              show_default=True,
              help="Runs folder holding leaderboard.csv (or the CSV itself); repeat it to pool several "
                   "folders, e.g. one demo per seed.")
@click.option("--table", "table", type=click.Choice(TABLE_CHOICES), default="all", show_default=True,
              help="Which paper table: 1 = clear RAF-DB/FERPlus/KDEF, 2-4 = LL-RAF-DB/LL-FERPlus/LL-KDEF, "
                   "5 = LLDif ablation V1-V4.")
@click.option("--format", "fmt", type=click.Choice(("md", "csv")), default="md", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of printing.")
@click.option("--aggregate", type=click.Choice(("mean", "best")), default="mean", show_default=True,
              help="Over seeds: mean ± sample std with the number of runs n, or the best run (flatters).")
@click.option("--all", "include_empty", is_flag=True,
              help="List every paper cell, also for datasets without any run (as 'missing').")
@click.option("--metric", type=click.Choice(("final", "best-epoch")), default="final", show_default=True,
              help="Our number: the final epoch's accuracy (leaderboard), or the best epoch's from each "
                   "run's results.json (picked on the test split, as the original papers report).")
@click.option("--synthetic-reference", type=click.Choice(("rafdb", "none")), default="rafdb", show_default=True,
              help="Paper column for synthetic-data rows: the RAF-DB reference of the same condition "
                   "(a proxy), or empty.")
def command(runs_dirs: tuple[Path, ...], table: str, fmt: str, out: Path | None, aggregate: str, include_empty: bool,
            metric: str, synthetic_reference: str) -> None:
    """Build the paper's tables from finished runs: columns method, ours, paper, Δ, runs.

    Our number is the mean ± sample std over seeds (n = runs) unless --aggregate best. Cells
    without a finished run say 'missing'; datasets without any run are left out unless --all. The
    paper column is the number reported by the paper (n/r where it reports none) and is never used
    as a result.

    \b
    Examples:
      lldif-bench report --table all --format md
      lldif-bench report --table 2 --format csv --out table2.csv
      lldif-bench report --table 1 --all --aggregate best
      lldif-bench report --runs demo-s0/runs --runs demo-s1/runs --runs demo-s2/runs
    """
    import pandas as pd

    from lldif_bench.imageio import atomic_write_bytes
    from lldif_bench.reports.epd import epd_table
    from lldif_bench.reports.runs import apply_metric, read_leaderboard
    from lldif_bench.reports.tables import build_tables, to_csv, to_markdown

    board = pd.concat([apply_metric(read_leaderboard(d), metric, d) for d in runs_dirs], ignore_index=True)
    numbers = [1, 2, 3, 4, 5] if table == "all" else [int(table)]
    tables = build_tables(numbers, board, aggregate, synthetic_reference, metric, include_empty)
    text = to_markdown(tables, synthetic_reference, numbers) if fmt == "md" else to_csv(tables)
    # LLDif runs: is the diffusion prior informative, or collapsed?
    epd = pd.concat([epd_table(d) for d in runs_dirs], ignore_index=True)
    if len(epd) and fmt == "md":
        text += ("\n\n### LLDif EPD diagnostics (final stage; shuffled = another image's Ẑ)\n\n"
                 + epd.to_markdown(index=False) + "\n")
    if out is None:
        click.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, text.encode("utf-8"))
        click.echo(f"wrote {out}")
    if len(epd) and fmt == "csv":  # a CSV holds one table: the diagnostics go to a file of their own
        epd_out = (out.with_name(f"{out.stem}_epd.csv") if out is not None
                   else (runs_dirs[0] if runs_dirs[0].is_dir() else runs_dirs[0].parent) / "epd.csv")
        atomic_write_bytes(epd_out, epd.to_csv(index=False).encode("utf-8"))
        click.echo(f"wrote {epd_out} (LLDif EPD diagnostics)", err=out is None)
