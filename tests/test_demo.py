"""`lldif-bench demo` end to end at toy size: data, low-light copy, two runs, leaderboard; resumes."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from click.testing import CliRunner

from lldif_bench.cli.main import main


def test_demo_writes_a_clear_vs_lowlight_leaderboard_and_resumes(tmp_path):
    out = tmp_path / "demo"
    args = ["--device", "cpu", "demo", "--out", str(out), "--num-images", "28", "--epochs", "1",
            "--methods", "resnet18"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out / "leaderboard.csv")
    assert list(table["method"]) == ["resnet18"]
    row = table.iloc[0]
    assert 0 <= row["clear acc (%)"] <= 100 and 0 <= row["low-light acc (%)"] <= 100
    assert row["drop (points)"] == round(row["clear acc (%)"] - row["low-light acc (%)"], 2)
    assert "| resnet18" in (out / "leaderboard.md").read_text()
    assert (out / "data" / "lowlight" / "landmarks.npz").is_file()
    runs = sorted(p.name for p in (out / "runs").iterdir() if p.is_dir())
    assert runs == ["resnet18-synthetic-clear-s0", "resnet18-synthetic-low-light-s0"]
    # `report` files the demo's runs under the synthetic rows (they were named "data": no table found them)
    assert set(pd.read_csv(out / "runs" / "leaderboard.csv")["dataset"]) == {"synthetic"}
    rep = CliRunner().invoke(main, ["report", "--runs", str(out / "runs"), "--table", "2", "--format", "md"])
    assert rep.exit_code == 0, rep.output
    assert "| LL-synthetic | ResNet-18" in rep.output, rep.output
    # a second call keeps the finished runs (no new leaderboard rows) and prints the same table
    rows_before = len(pd.read_csv(out / "runs" / "leaderboard.csv"))
    r2 = CliRunner().invoke(main, args)
    assert r2.exit_code == 0, r2.output
    assert len(pd.read_csv(out / "runs" / "leaderboard.csv")) == rows_before
    assert pd.read_csv(out / "leaderboard.csv").equals(table)
    # another recipe (here --epochs 2) retrains both runs instead of keeping the 1-epoch ones
    r3 = CliRunner().invoke(main, [*args[:-4], "--epochs", "2", *args[-2:]])
    assert r3.exit_code == 0, r3.output
    assert len(pd.read_csv(out / "runs" / "leaderboard.csv")) == rows_before + 2
    for run in runs:
        assert yaml.safe_load((out / "runs" / run / "config.yaml").read_text())["config"]["epochs"] == 2
    # data made by another generator revision is regenerated, and the runs trained on it are retrained
    card = out / "data" / "clear" / "synthetic.json"
    meta = json.loads(card.read_text())
    card.write_text(json.dumps({**meta, "generator_revision": meta["generator_revision"] - 1}))
    r4 = CliRunner().invoke(main, [*args[:-4], "--epochs", "2", *args[-2:]])
    assert r4.exit_code == 0, r4.output
    assert len(pd.read_csv(out / "runs" / "leaderboard.csv")) == rows_before + 4


def test_demo_with_a_relative_out_keeps_its_finished_runs(tmp_path, monkeypatch):
    """The default --out is the relative `demo`; the harness records the data folder resolved, and a
    second call must still keep (not retrain and overwrite) the finished runs."""
    monkeypatch.chdir(tmp_path)
    args = ["--device", "cpu", "demo", "--out", "demo", "--num-images", "28", "--epochs", "1",
            "--methods", "resnet18"]
    assert CliRunner().invoke(main, args).exit_code == 0
    board = tmp_path / "demo" / "runs" / "leaderboard.csv"
    rows_before = len(pd.read_csv(board))
    r2 = CliRunner().invoke(main, args)
    assert r2.exit_code == 0, r2.output
    assert len(pd.read_csv(board)) == rows_before


def test_demo_rejects_unknown_method(tmp_path):
    r = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "d"), "--methods", "nope", "--num-images", "28"])
    assert r.exit_code != 0 and "unknown method" in r.output and "resnet18" in r.output
