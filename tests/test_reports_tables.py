"""Tables built from a hand-made leaderboard: missing cells, several seeds, best vs mean ± std."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from lldif_bench.errors import UserError
from lldif_bench.reports.runs import read_leaderboard
from lldif_bench.reports.tables import (
    build_table,
    build_tables,
    get_table,
    to_csv,
    to_markdown,
)

COLUMNS = ["method", "dataset", "condition", "accuracy", "mean class accuracy", "epochs", "seed", "params",
           "run dir", "date"]


def _write_board(tmp_path, rows):
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.to_csv(tmp_path / "leaderboard.csv", index=False)
    return read_leaderboard(tmp_path)


def _row(method, dataset, condition, acc, seed, run_dir=""):
    return [method, dataset, condition, acc, acc - 0.05, 10, seed, 1000, run_dir, "2026-01-01"]


@pytest.fixture()
def board(tmp_path):
    for name, variant in (("lldif-v1", "V1"), ("lldif-v3", "V3")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump({"method": {"name": "lldif",
                                                                               "variant": variant}}))
    rows = [
        _row("dan", "rafdb", "low-light", 0.80, 0),   # fractions are read as percent
        _row("dan", "rafdb", "low-light", 0.78, 1),
        _row("dan", "rafdb", "low-light", 0.79, 2),
        _row("lldif", "rafdb", "low-light", 0.83, 0),
        _row("resnet18", "rafdb", "low-light", 0.70, 0),
        _row("scn", "rafdb", "clear", 0.86, 0),
        _row("lldif", "kdef", "low-light", 0.90, 0, "lldif-v1"),
        _row("lldif", "kdef", "low-light", 0.91, 0, "lldif-v3"),
        _row("lldif", "synthetic", "low-light", 0.60, 0),
    ]
    return _write_board(tmp_path, rows)


def _cell(table, dataset, method):
    hit = table[(table.dataset == dataset) & (table.method == method)]
    assert len(hit) == 1, (dataset, method, table[["dataset", "method"]])
    return hit.iloc[0]


def test_best_over_seeds_and_missing_cells(board):
    table = build_table(get_table(2), board, "best")
    dan = _cell(table, "LL-RAF-DB", "DAN")
    assert dan.ours == pytest.approx(80.0) and dan.runs == 3 and dan.seeds == "0,1,2"
    assert dan.paper == pytest.approx(79.27) and dan.delta == pytest.approx(80.0 - 79.27)
    scn = _cell(table, "LL-RAF-DB", "SCN")  # only a clear SCN run exists: missing here, never filled
    assert scn.ours == "missing" and scn.runs == 0 and math.isnan(scn.delta)
    assert _cell(table, "LL-RAF-DB", "LLDif (ours)").ours == pytest.approx(83.0)
    extra = _cell(table, "LL-RAF-DB", "ResNet-18")  # not in the paper: listed with paper n/r
    assert extra.paper == "n/r" and extra.ours == pytest.approx(70.0)
    # every paper cell of Table 2 has a row
    assert len(table[table.dataset == "LL-RAF-DB"]) == 8 + 1


def test_mean_and_sample_std(board):
    dan = _cell(build_table(get_table(2), board, "mean"), "LL-RAF-DB", "DAN")
    assert dan.ours == pytest.approx(79.0)
    assert dan.ours_std == pytest.approx(1.0)  # sample std of 80, 78, 79
    assert dan["aggregate"] == "mean ± std over seeds"


def test_table1_three_datasets_and_not_reported_cells(board):
    table = build_table(get_table(1), board, "best", include_empty=True)
    assert set(table.dataset) >= {"RAF-DB", "FERPlus", "KDEF"}
    assert _cell(table, "RAF-DB", "SCN").ours == pytest.approx(86.0)
    assert _cell(table, "FERPlus", "SCN").ours == "missing"
    assert "ARM" not in set(table[table.dataset == "KDEF"].method)  # the paper has no ARM on KDEF


def test_datasets_without_runs_are_left_out_unless_asked(board):
    # the only clear run is SCN on RAF-DB: FERPlus and KDEF have no run, so no rows by default
    assert set(build_table(get_table(1), board).dataset) == {"RAF-DB"}
    # LL-FERPlus has no run; the synthetic block (one LLDif run) lists the paper's methods
    assert set(build_table(get_table(3), board).dataset) == {"LL-synthetic"}
    empty = build_tables([1, 3], board.iloc[0:0])
    assert len(empty) == 0 and "ours" in empty.columns
    md = to_markdown(empty, numbers=[1, 3])
    assert "### Table 1:" in md and "### Table 3:" in md and "No finished run" in md and "--all" in md
    full = build_table(get_table(1), board.iloc[0:0], include_empty=True)
    assert set(full.ours) == {"missing"} and {"RAF-DB", "FERPlus", "KDEF"} <= set(full.dataset)


def test_default_aggregate_is_mean_with_n(board):
    dan = _cell(build_table(get_table(2), board), "LL-RAF-DB", "DAN")
    assert dan.ours == pytest.approx(79.0) and dan.ours_std == pytest.approx(1.0) and dan.runs == 3
    md = to_markdown(build_tables([2], board))
    assert "79.00 ± 1.00" in md and "mean ± std over seeds" in md and "| n" in md.replace("|   n", "| n")
    best = to_markdown(build_tables([2], board, "best"))
    assert "80.00 (best)" in best and "best over seeds" in best


def test_ablation_variants_from_run_config(board):
    table = build_table(get_table(5), board, "best")
    assert _cell(table, "LL-KDEF", "LLDif-V1").ours == pytest.approx(90.0)
    assert _cell(table, "LL-KDEF", "LLDif-V3").ours == pytest.approx(91.0)
    assert _cell(table, "LL-KDEF", "LLDif-V2").ours == "missing"
    assert _cell(table, "LL-KDEF", "LLDif-V1").paper == pytest.approx(89.46)
    # a V1 run must not count as Table 4's LLDif (the default variant is V4)
    t4 = build_table(get_table(4), board, "best")
    assert _cell(t4, "LL-KDEF", "LLDif (ours)").ours == "missing"


def test_synthetic_rows_and_reference_mapping(board):
    table = build_table(get_table(3), board, "best", synthetic_reference="rafdb")
    syn = _cell(table, "LL-synthetic", "LLDif (ours)")
    assert syn.ours == pytest.approx(60.0)
    assert syn.paper == pytest.approx(82.26) and "LL-RAF-DB" in syn.paper_ref  # RAF-DB proxy
    none = _cell(build_table(get_table(3), board, "best", synthetic_reference="none"), "LL-synthetic",
                 "LLDif (ours)")
    assert none.paper == "n/r"


def test_markdown_and_csv_render(board):
    tables = build_tables([1, 2, 3, 4, 5], board)
    md = to_markdown(tables)
    for n in range(1, 6):
        assert f"### Table {n}:" in md
    assert "missing" in md and "| method" in md and "Δ" in md
    csv = to_csv(tables)
    assert csv.splitlines()[0].startswith("table,dataset,condition,method")


def test_bad_inputs_are_clear(tmp_path, board):
    with pytest.raises(UserError, match="no leaderboard"):
        read_leaderboard(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    pd.DataFrame({"method": ["x"]}).to_csv(tmp_path / "bad" / "leaderboard.csv", index=False)
    with pytest.raises(UserError, match="lacks column"):
        read_leaderboard(tmp_path / "bad")
    with pytest.raises(UserError, match="aggregate"):
        build_table(get_table(2), board, "median")


def test_cli_report(tmp_path, board):
    from lldif_bench.cli.main import main

    result = CliRunner().invoke(main, ["report", "--runs", str(tmp_path), "--table", "all", "--format", "md"])
    assert result.exit_code == 0, result.output
    assert "### Table 5:" in result.output and "missing" in result.output
    assert "| FERPlus " not in result.output and "mean ± std over seeds" in result.output
    result = CliRunner().invoke(main, ["report", "--runs", str(tmp_path), "--table", "1", "--all"])
    assert result.exit_code == 0, result.output
    assert "| FERPlus " in result.output and "| KDEF " in result.output
    out = tmp_path / "t2.csv"
    result = CliRunner().invoke(main, ["report", "--runs", str(tmp_path), "--table", "2", "--format", "csv",
                                       "--aggregate", "mean", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert set(frame.table) == {2}
    result = CliRunner().invoke(main, ["report", "--runs", str(tmp_path / "none")])
    assert result.exit_code != 0 and "no leaderboard" in result.output


def test_dataset_key_from_recorded_root(tmp_path):
    """A folder name that says nothing (e.g. a demo's 'data') is resolved from the run's recorded
    dataset root: the synthetic generator's card marks synthetic data, path names mark the rest."""
    syn = tmp_path / "data" / "clear"
    syn.mkdir(parents=True)
    (syn / "synthetic.json").write_text("{}")
    raf = tmp_path / "RAF-DB" / "basic"
    raf.mkdir(parents=True)
    for name, root in (("run-a", syn), ("run-b", raf)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump({"dataset": {"root": str(root)}}))
    board = _write_board(tmp_path, [_row("dan", "data", "clear", 0.5, 0, str(tmp_path / "run-a")),
                                    _row("dan", "basic", "clear", 0.6, 0, str(tmp_path / "run-b"))])
    assert board.dataset.tolist() == ["synthetic", "rafdb"]


def test_best_epoch_metric_reads_results_json(tmp_path):
    import json

    from lldif_bench.reports.runs import apply_metric

    for name, best in (("r0", 0.81), ("r1", None)):
        (tmp_path / name).mkdir()
        results = {"final": {"accuracy": 0.7}, "best": {"epoch": 3, "accuracy": best} if best else {}}
        (tmp_path / name / "results.json").write_text(json.dumps(results))
    board = _write_board(tmp_path, [_row("dan", "rafdb", "low-light", 0.70, 0, str(tmp_path / "r0")),
                                    _row("dan", "rafdb", "low-light", 0.75, 1, str(tmp_path / "r1"))])
    best = apply_metric(board, "best-epoch", tmp_path)
    assert best.accuracy.tolist() == pytest.approx([81.0])  # r1 has no best accuracy: left out, counted
    dan = _cell(build_table(get_table(2), best, "best", metric="best-epoch"), "LL-RAF-DB", "DAN")
    assert dan.ours == pytest.approx(81.0) and dan.runs == 1
    assert "best-epoch" in to_markdown(build_tables([2], best, metric="best-epoch"))
    assert apply_metric(board, "final", tmp_path).accuracy.tolist() == pytest.approx([70.0, 75.0])


def test_cli_report_pools_several_runs_folders(tmp_path):
    """One demo per seed writes its own runs folder: repeated --runs pools them into mean ± std."""
    from lldif_bench.cli.main import main

    folders = []
    for seed, acc in ((0, 0.80), (1, 0.70)):
        folder = tmp_path / f"demo-s{seed}"
        folder.mkdir()
        _write_board(folder, [_row("resnet18", "rafdb", "low-light", acc, seed)])
        folders += ["--runs", str(folder)]
    out = tmp_path / "t2.csv"
    result = CliRunner().invoke(main, ["report", *folders, "--table", "2", "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    row = pd.read_csv(out).query("method_key == 'resnet18'").iloc[0]
    assert row["runs"] == 2 and row["seeds"] == "0,1" and math.isclose(float(row["ours"]), 75.0)
