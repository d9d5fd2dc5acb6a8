"""Leaderboard appends under concurrency; metric definitions."""

from __future__ import annotations

import csv
import multiprocessing as mp

import numpy as np
import pytest

from lldif_bench.training.leaderboard import COLUMNS, append_row
from lldif_bench.training.metrics import classification_metrics, confusion_matrix


def _writer(path: str, who: str, n: int) -> None:
    for i in range(n):
        append_row(path, {"method": who, "dataset": "d", "condition": "clear", "accuracy": i / n,
                          "mean_class_accuracy": 0.5, "epochs": 1, "seed": i, "params": 10,
                          "run_dir": f"runs/{who}-{i}" + "x" * 300, "date": "2026-01-01"})


def test_two_concurrent_writers_never_corrupt_the_leaderboard(tmp_path):
    path = str(tmp_path / "runs" / "leaderboard.csv")
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    procs = [ctx.Process(target=_writer, args=(path, who, 40)) for who in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(COLUMNS)
    body = rows[1:]
    assert len(body) == 80 and all(len(r) == len(COLUMNS) for r in body)
    assert sorted(r[0] for r in body) == ["a"] * 40 + ["b"] * 40
    assert sum(r[0] == "a" and r[6] == "39" for r in body) == 1


def test_row_must_have_every_column(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        append_row(tmp_path / "l.csv", {"method": "m"})


def test_metrics_definitions():
    labels = np.array([0, 0, 0, 1, 2, 2])
    probs = np.array([[.9, .1, 0], [.2, .7, .1], [.6, .3, .1], [.1, .8, .1], [.3, .3, .4], [.5, .2, .3]])
    m = classification_metrics(labels, probs, ["a", "b", "c", "d"][:3])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"] == {"a": pytest.approx(2 / 3), "b": 1.0, "c": 0.5}
    assert m["mean_class_accuracy"] == pytest.approx((2 / 3 + 1 + 0.5) / 3)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert m["mean_confidence"] == pytest.approx(np.mean([.9, .7, .6, .8, .4, .5]))
    # a class absent from the split is left out of the mean, not counted as 0
    m2 = classification_metrics(np.array([0, 1]), np.eye(3)[[0, 2]], ["a", "b", "c"])
    assert m2["per_class"]["c"] is None and m2["mean_class_accuracy"] == pytest.approx(0.5)
    assert confusion_matrix(np.array([1]), np.array([0]), 2).tolist() == [[0, 0], [1, 0]]
