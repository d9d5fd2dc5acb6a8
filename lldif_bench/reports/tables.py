"""Tables 1–5 as data, and the builder that fills them from leaderboard rows.

A :class:`TableSpec` names a table's condition, datasets and (for Table 5) LLDif variants; its cells
(method × dataset) are exactly the cells the paper reports (``paper_reference.csv``). The builder puts
our number (mean ± sample std over seeds by default, or the best seed) beside the paper's, with
Δ = ours − paper and the number of runs n. A cell without a finished run is marked ``missing``, never
filled; a paper cell the paper does not report is ``n/r``. A dataset block without any run in the
table's condition is left out unless ``include_empty`` asks for every paper cell. Leaderboard rows for other methods on the same dataset/condition (e.g.
``resnet18``) are listed after the paper's rows, with paper ``n/r``.

Synthetic-data rows (``dataset = synthetic``, the demo's) form their own block in every table of
their condition. Their paper column, with ``synthetic_reference="rafdb"`` (default), is the RAF-DB
reference in the same condition (Table 1's RAF-DB column for clear, Table 2's LL-RAF-DB for
low-light; Table 5's own numbers for the ablation): a proxy to read trends, not a like-for-like
comparison. With ``"none"`` it is left empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from lldif_bench.errors import UserError
from lldif_bench.registry import Registry
from lldif_bench.reports.paper_tables import (
    SOURCE,
    TABLE_TITLES,
    paper_accuracy,
    paper_reference,
)

Aggregate = Literal["best", "mean"]
AGGREGATES = ("best", "mean")
SYNTHETIC = "synthetic"
SYNTHETIC_REFERENCES = ("rafdb", "none")
LLDIF_DEFAULT_VARIANT = "V4"  # the paper's "Ours"; an LLDif run without a variant is V4

DATASET_NAMES = {
    ("rafdb", "clear"): "RAF-DB", ("ferplus", "clear"): "FERPlus", ("kdef", "clear"): "KDEF",
    ("rafdb", "low-light"): "LL-RAF-DB", ("ferplus", "low-light"): "LL-FERPlus",
    ("kdef", "low-light"): "LL-KDEF",
    (SYNTHETIC, "clear"): "synthetic", (SYNTHETIC, "low-light"): "LL-synthetic",
}
METHOD_NAMES = {
    "arm": "ARM", "posterpp": "POSTER++", "rul": "RUL", "dan": "DAN", "scn": "SCN", "eac": "EAC",
    "manet": "MANet", "dacl": "DACL", "lldif": "LLDif (ours)", "resnet18": "ResNet-18",
}
TABLE_COLUMNS = ("table", "dataset", "condition", "method", "method_key", "variant", "ours", "ours_std", "paper",
                 "paper_ref", "delta", "runs", "seeds", "aggregate", "metric")
MARK_MISSING = "missing"
MARK_NOT_REPORTED = "n/r"


@dataclass(frozen=True)
class Cell:
    """One table row's key: which runs count for it."""

    method: str
    dataset: str
    condition: str
    variant: str = ""


@dataclass(frozen=True)
class TableSpec:
    number: int
    title: str
    condition: str
    datasets: tuple[str, ...]
    ablation: bool = False  # Table 5: rows are LLDif variants

    def cells(self) -> list[Cell]:
        """The cells the paper reports, in the paper's row order (the table's needs)."""
        ref = paper_reference()
        ref = ref[ref.table == self.number]
        return [Cell(r.method, r.dataset, r.condition, r.variant) for r in ref.itertuples()]

    def methods(self) -> list[str]:
        return list(dict.fromkeys(c.method for c in self.cells()))


TABLES: Registry[TableSpec] = Registry("table")
for _spec in (
    TableSpec(1, TABLE_TITLES[1], "clear", ("rafdb", "ferplus", "kdef")),
    TableSpec(2, TABLE_TITLES[2], "low-light", ("rafdb",)),
    TableSpec(3, TABLE_TITLES[3], "low-light", ("ferplus",)),
    TableSpec(4, TABLE_TITLES[4], "low-light", ("kdef",)),
    TableSpec(5, TABLE_TITLES[5], "low-light", ("kdef",), ablation=True),
):
    TABLES.add(str(_spec.number), _spec, _spec.title)


def get_table(number: int | str) -> TableSpec:
    return TABLES.get(str(number))


def _variant_matches(row_variant: str, cell: Cell) -> bool:
    if cell.method != "lldif":
        return True
    wanted = cell.variant or LLDIF_DEFAULT_VARIANT
    return (row_variant or LLDIF_DEFAULT_VARIANT) == wanted


def _rows_for(board: pd.DataFrame, cell: Cell) -> pd.DataFrame:
    hit = board[(board.method == cell.method) & (board.dataset == cell.dataset)
                & (board.condition == cell.condition)]
    return hit[[_variant_matches(v, cell) for v in hit.variant]] if len(hit) else hit


def aggregate_runs(values: list[float], how: Aggregate) -> tuple[float, float]:
    """(value, std) over runs: best = max (std NaN); mean = mean and sample std (NaN for one run)."""
    if how == "best":
        return max(values), math.nan
    if how == "mean":
        mean = sum(values) / len(values)
        if len(values) < 2:
            return mean, math.nan
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        return mean, math.sqrt(var)
    raise UserError(f"unknown aggregate {how!r}; use one of {', '.join(AGGREGATES)}")


def _method_label(cell: Cell, ablation: bool) -> str:
    name = METHOD_NAMES.get(cell.method, cell.method)
    if cell.method == "lldif" and (ablation or cell.variant):
        return f"LLDif-{cell.variant or LLDIF_DEFAULT_VARIANT}"
    return name


def _paper_value(spec: TableSpec, cell: Cell, synthetic_reference: str) -> tuple[float | None, str]:
    """The paper's number for a row and what it refers to."""
    if cell.dataset != SYNTHETIC:
        return paper_accuracy(spec.number, cell.method, cell.dataset, cell.condition, cell.variant), \
            f"Table {spec.number}"
    if synthetic_reference == "none":
        return None, ""
    if spec.ablation:
        return paper_accuracy(5, cell.method, "kdef", "low-light", cell.variant), "Table 5 (LL-KDEF)"
    table = 1 if cell.condition == "clear" else 2
    name = DATASET_NAMES[("rafdb", cell.condition)]
    return paper_accuracy(table, cell.method, "rafdb", cell.condition), f"Table {table} ({name}, proxy)"


def _extra_cells(board: pd.DataFrame, spec: TableSpec, dataset: str, known: list[Cell]) -> list[Cell]:
    """Leaderboard rows on this dataset/condition that no paper cell claims (e.g. resnet18)."""
    sub = board[(board.dataset == dataset) & (board.condition == spec.condition)]
    extra: list[Cell] = []
    for method, variant in dict.fromkeys(zip(sub.method, sub.variant)):
        if spec.ablation:
            if method != "lldif":
                continue
            cell = Cell(method, dataset, spec.condition, variant or LLDIF_DEFAULT_VARIANT)
        else:
            if method == "lldif" and (variant or LLDIF_DEFAULT_VARIANT) != LLDIF_DEFAULT_VARIANT:
                continue  # ablation variants belong to Table 5
            cell = Cell(method, dataset, spec.condition, "")
        if cell not in known and cell not in extra:
            extra.append(cell)
    return extra


def _has_runs(board: pd.DataFrame, spec: TableSpec, dataset: str) -> bool:
    """Whether the leaderboard holds a run that this table's block for ``dataset`` could show."""
    hit = board[(board.dataset == dataset) & (board.condition == spec.condition)]
    return bool(len(hit[hit.method == "lldif"] if spec.ablation else hit))


def build_table(spec: TableSpec, board: pd.DataFrame, aggregate: Aggregate = "mean",
                synthetic_reference: str = "rafdb", metric: str = "final",
                include_empty: bool = False) -> pd.DataFrame:
    """One table as a long frame (one row per method × dataset).

    Columns: table, dataset, condition, method, method_key, variant, ours (float or ``missing``),
    ours_std, paper (float or ``n/r``), paper_ref, delta, runs, seeds, aggregate.
    ``board`` is :func:`lldif_bench.reports.runs.read_leaderboard`'s frame. Datasets without any
    run in the table's condition are left out unless ``include_empty`` (then every paper cell has
    a row, ``missing`` where no run exists); the frame may be empty.
    """
    if aggregate not in AGGREGATES:
        raise UserError(f"unknown aggregate {aggregate!r}; use one of {', '.join(AGGREGATES)}")
    if synthetic_reference not in SYNTHETIC_REFERENCES:
        raise UserError(f"synthetic reference must be one of {', '.join(SYNTHETIC_REFERENCES)}")
    paper_cells = spec.cells()
    blocks: list[tuple[str, list[Cell]]] = []
    for dataset in spec.datasets:
        if not include_empty and not _has_runs(board, spec, dataset):
            continue
        known = [c for c in paper_cells if c.dataset == dataset]
        blocks.append((dataset, known + _extra_cells(board, spec, dataset, known)))
    if _has_runs(board, spec, SYNTHETIC) or (include_empty and (board.dataset == SYNTHETIC).any()):
        proxy = [Cell(c.method, SYNTHETIC, spec.condition, c.variant) for c in paper_cells
                 if c.dataset == spec.datasets[0]]
        blocks.append((SYNTHETIC, proxy + _extra_cells(board, spec, SYNTHETIC, proxy)))

    rows = []
    for dataset, cells in blocks:
        for cell in cells:
            hit = _rows_for(board, cell)
            paper, paper_ref = _paper_value(spec, cell, synthetic_reference)
            values = [float(v) for v in hit.accuracy]
            if values:
                ours, std = aggregate_runs(values, aggregate)
            else:
                ours, std = MARK_MISSING, math.nan
            seeds = sorted({str(int(s)) for s in hit.seed if pd.notna(s)}, key=int) if len(hit) else []
            rows.append({
                "table": spec.number,
                "dataset": DATASET_NAMES.get((dataset, spec.condition), dataset),
                "condition": spec.condition,
                "method": _method_label(cell, spec.ablation),
                "method_key": cell.method,
                "variant": cell.variant,
                "ours": ours,
                "ours_std": std,
                "paper": MARK_NOT_REPORTED if paper is None else paper,
                "paper_ref": paper_ref if paper is not None else "",
                "delta": (ours - paper) if values and paper is not None else math.nan,
                "runs": len(values),
                "seeds": ",".join(seeds),
                "aggregate": "best over seeds" if aggregate == "best" else "mean ± std over seeds",
                "metric": metric,
            })
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def build_tables(numbers: list[int], board: pd.DataFrame, aggregate: Aggregate = "mean",
                 synthetic_reference: str = "rafdb", metric: str = "final",
                 include_empty: bool = False) -> pd.DataFrame:
    """Several tables stacked (the ``table`` column tells them apart)."""
    frames = [build_table(get_table(n), board, aggregate, synthetic_reference, metric, include_empty)
              for n in numbers]
    return pd.concat([f for f in frames if len(f)] or [pd.DataFrame(columns=TABLE_COLUMNS)], ignore_index=True)


def _fmt_ours(row) -> str:
    """``79.00 ± 1.00`` for a mean over seeds (n in its own column), ``80.00 (best)`` for the best seed."""
    if isinstance(row.ours, str):
        return row.ours
    if row.aggregate.startswith("best"):
        return f"{row.ours:.2f}" + (" (best)" if row.runs > 1 else "")
    if isinstance(row.ours_std, float) and not math.isnan(row.ours_std):
        return f"{row.ours:.2f} ± {row.ours_std:.2f}"
    return f"{row.ours:.2f}"


def _fmt_paper(row) -> str:
    if isinstance(row.paper, str):
        return row.paper
    return f"{row.paper:.2f}"


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The human-readable columns: dataset, method, ours, paper, Δ, n (runs)."""
    return pd.DataFrame({
        "dataset": table.dataset,
        "method": table.method,
        "ours": [_fmt_ours(r) for r in table.itertuples()],
        "paper": [_fmt_paper(r) for r in table.itertuples()],
        "Δ": ["" if math.isnan(d) else f"{d:+.2f}" for d in table.delta.astype(float)],
        "n": table.runs.astype(int),
    })


def to_markdown(tables: pd.DataFrame, synthetic_reference: str = "rafdb",
                numbers: list[int] | None = None) -> str:
    """Markdown with one section per table, each stating the aggregate and the paper column's source.

    A table of ``numbers`` without any row (no run on its datasets) gets a one-line section saying so.
    """
    out = []
    by_number = {int(n): t for n, t in tables.groupby("table", sort=True)} if len(tables) else {}
    for number in sorted(set(by_number) | set(numbers or [])):
        spec = get_table(number)
        out.append(f"### Table {number}: {spec.title}\n")
        table = by_number.get(number)
        if table is None:
            out.append(f"No finished run on this table's datasets ({', '.join(spec.datasets)} or synthetic) "
                       "in its condition; `--all` lists the paper's cells as missing.\n")
            continue
        agg = table["aggregate"].iloc[0]
        metric = table["metric"].iloc[0]
        which = "final-epoch" if metric == "final" else "best-epoch (test-selected, as the papers report)"
        notes = [f"ours = {which} top-1 accuracy (%), {agg}", f"paper = {SOURCE} ({MARK_NOT_REPORTED} = not reported)",
                 f"{MARK_MISSING} = no finished run", "Δ = ours − paper", "n = runs (seeds)"]
        if (table.dataset.str.contains("synthetic")).any():
            proxy = "Table 5's own numbers" if spec.ablation else "RAF-DB reference of the same condition"
            notes.append("synthetic rows: paper column = " + (
                f"{proxy} (a proxy)" if synthetic_reference == "rafdb" else "empty"))
        if spec.ablation:
            notes.append("dataset not named by the paper for Table 5; LL-KDEF inferred (V4 = Table 4)")
        out.append("; ".join(notes) + ".\n")
        out.append(display_frame(table).to_markdown(
            index=False, disable_numparse=True, colalign=("left", "left", "right", "right", "right", "right")))
        out.append("\n")
    return "\n".join(out).rstrip() + "\n"


def to_csv(tables: pd.DataFrame) -> str:
    """CSV of the long frame (numbers unrounded; ``missing``/``n/r`` as text)."""
    return tables.to_csv(index=False, float_format="%.4f")
