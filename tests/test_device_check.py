"""benchmarks/device_check.py: the CPU smoke run end to end, and its pure pieces (targets, budget, guards)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import device_check as dc


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_ctx(tmp_path: Path, budget_s: float = 100.0, clock=None) -> dc.Context:
    budget = dc.Budget(budget_s, clock=clock) if clock else dc.Budget(budget_s)
    return dc.Context(dc.FULL, torch.device("cpu"), budget, tmp_path, smoke=False)


# -- targets -----------------------------------------------------------------------------------------
def test_evaluate_target_pass_fail_not_measured_and_smoke():
    at_least = dc.Target("k", "rate", ("s", "v"), ">=", 10, "img/s")
    at_most = dc.Target("w", "wait", ("s", "w"), "<=", 0.1)
    assert dc.evaluate_target(at_least, 12, smoke=False)["status"] == "pass"
    assert dc.evaluate_target(at_least, 10, smoke=False)["status"] == "pass"  # the threshold itself passes
    assert dc.evaluate_target(at_least, 9.99, smoke=False)["status"] == "fail"
    assert dc.evaluate_target(at_most, 0.05, smoke=False)["status"] == "pass"
    assert dc.evaluate_target(at_most, 0.2, smoke=False)["status"] == "fail"
    for missing in (None, float("nan"), "x"):
        row = dc.evaluate_target(at_least, missing, smoke=False)
        assert row["status"] == "not measured" and row["value"] is None
    smoke = dc.evaluate_target(at_least, 1, smoke=True)
    assert smoke["status"] == "n/a (cpu smoke)" and smoke["value"] == 1.0


def test_lookup_follows_paths_and_tolerates_gaps():
    results = {"training": {"lldif_full_run": {"hours": 0.8}}}
    assert dc.lookup(results, ("training", "lldif_full_run", "hours")) == 0.8
    assert dc.lookup(results, ("training", "missing", "hours")) is None
    assert dc.lookup(results, ("inference",)) is None


def test_targets_name_real_sections_and_diagnoses():
    keys = {t.key for t in dc.TARGETS}
    assert {"degrade_speedup", "make_dataset_img_s", "make_dataset_vs_floor", "lldif_train_img_s",
            "lldif_train_mfu", "lldif_data_wait", "lldif_full_run_hours"} <= keys
    for t in dc.TARGETS:
        dc.SECTIONS.get(t.path[0])
        assert t.op in dc.COMPARE
        if t.diagnose:
            dc.DIAGNOSES.get(t.diagnose)


def test_full_run_estimate_weights_stages_by_epochs():
    stages = [{"stage": "a", "epochs": 10, "img_s": 100.0, "train_gflop_per_image": 1.0},
              {"stage": "b", "epochs": 30, "img_s": 300.0, "train_gflop_per_image": 2.0}]
    est = dc.full_run_estimate(stages, 1000, peak_tflops=1.0)
    # 10*1000/100 + 30*1000/300 = 200 s for 40,000 images and 70,000 GFLOP
    assert est["hours"] == pytest.approx(200 / 3600)
    assert est["img_s"] == pytest.approx(200.0)
    assert est["mfu"] == pytest.approx(0.35)
    assert dc.full_run_estimate(stages, 1000, peak_tflops=None)["mfu"] is None


def test_fmt_and_target_line():
    assert dc.fmt(None) == "" and dc.fmt(float("inf")) == ""
    assert dc.fmt(1234.4) == "1,234" and dc.fmt(0.12345) == "0.123" and dc.fmt(2e-5) == "2.00e-05"
    row = dc.evaluate_target(dc.Target("k", "rate", ("s",), ">=", 10, "img/s"), 3, smoke=False)
    row["bottleneck"] = "the loader"
    line = dc.target_line(row)
    assert line.startswith("[FAIL] rate: 3 img/s (target >= 10)") and "bottleneck: the loader" in line


# -- budget and guards -------------------------------------------------------------------------------
def test_budget_counts_down_with_the_clock():
    clock = FakeClock()
    budget = dc.Budget(60, clock=clock)
    assert budget.allows(60) and budget.left() == 60
    clock.now += 45
    assert budget.elapsed() == 45 and budget.left() == 15
    assert budget.allows(15) and not budget.allows(16)


def test_run_guarded_skips_when_the_budget_is_short(tmp_path):
    clock = FakeClock()
    ctx = make_ctx(tmp_path, budget_s=30, clock=clock)
    ran = []
    record = dc.run_guarded("big", lambda c, out: ran.append(1), ctx, estimate_s=40, max_s=60)
    assert record["status"] == "skipped" and "time budget: 30 s left" in record["reason"] and not ran
    assert dc.run_guarded("small", lambda c, out: ran.append(1), ctx, estimate_s=20, max_s=60)["status"] == "ok"
    clock.now += 25  # 5 s left now: the same small section is skipped
    assert dc.run_guarded("small2", lambda c, out: ran.append(1), ctx, 20, 60)["status"] == "skipped"
    assert ran == [1]


def test_run_guarded_records_errors_keeps_partial_results_and_skips_missing_modules(tmp_path):
    ctx = make_ctx(tmp_path)

    def broken(c, out):
        out["measured"] = 1.5
        raise ValueError("bad input")

    record = dc.run_guarded("broken", broken, ctx, 1, 60)
    assert record["status"] == "error" and record["error"] == "ValueError: bad input"
    assert record["results"] == {"measured": 1.5} and "Traceback" in record["traceback"]
    record = dc.run_guarded("needs", lambda c, out: None, ctx, 1, 60, requires=("no_such_module_for_dc",))
    assert record["status"] == "skipped" and "needs no_such_module_for_dc" in record["reason"]


def test_run_guarded_stops_a_section_at_its_time_limit(tmp_path):
    ctx = make_ctx(tmp_path)
    t0 = time.perf_counter()
    record = dc.run_guarded("slow", lambda c, out: time.sleep(5), ctx, 0, max_s=0.2)
    assert record["status"] == "timeout" and time.perf_counter() - t0 < 4


def test_markdown_of_an_unmeasured_report_leaves_cells_empty():
    report = {"mode": "gpu", "started": "2026-01-01T00:00:00+00:00",
              "sections": {"training": {"status": "skipped", "seconds": 0.0, "results": {},
                                        "reason": "time budget: 3 s left, it needs about 60 s"}},
              "targets": [dc.evaluate_target(t, None, smoke=False) for t in dc.TARGETS]}
    md = dc.render_markdown(report)
    assert "## Targets" in md and md.count("not measured") == len(dc.TARGETS)
    assert "| training | skipped | 0 | time budget: 3 s left, it needs about 60 s |" in md
    assert "## Training" not in md


def test_wrapper_script_parses():
    assert subprocess.run(["bash", "-n", str(REPO / "benchmarks" / "device_check.sh")], check=False).returncode == 0


# -- the CPU smoke run ---------------------------------------------------------------------------------
def test_cpu_smoke_runs_every_section_and_writes_json_and_markdown(tmp_path, capsys):
    assert dc.main(["--cpu-smoke", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["mode"] == "cpu-smoke" and report["sizes"]["parity_batch"] == dc.SMOKE.parity_batch
    sections = report["sections"]
    assert list(sections)[:len(dc.SECTIONS.names())] == dc.SECTIONS.names()
    assert {f"diagnose {name}" for name in dc.DIAGNOSES.names()} <= set(sections)
    assert all(rec["status"] == "ok" for rec in sections.values()), {n: r.get("error") for n, r in sections.items()}
    res = {name: rec["results"] for name, rec in sections.items()}

    ops = {row["op"] for row in res["parity"]["ops"]}
    assert set(dc._op_cases().names()) <= ops and "degrade_batch_uint8 [realistic]" in ops
    assert res["parity"]["max_abs_err_float32"] == 0 and res["parity"]["max_mismatch_8bit"] == 0  # CPU vs CPU
    assert {(r["path"], r["mode"]) for r in res["throughput"]["rows"]} == {("uint8", "eager"), ("float32", "eager")}
    assert "compile skipped" in res["throughput"]["compile"]
    assert res["make_dataset"]["end_to_end_img_s"] > 0 and res["make_dataset"]["floor_img_s"] > 0
    trained = [(r["model"], r["stage"]) for r in res["training"]["rows"]]
    assert trained == [("resnet18", "main"), ("lldif", "0"), ("lldif", "1"), ("lldif", "2a"), ("lldif", "2b")]
    assert all(r["img_s"] > 0 and 0 <= r["data_wait"] < 1 and r["train_gflop_per_image"] > 0
               for r in res["training"]["rows"])
    assert res["training"]["lldif_full_run"]["hours"] > 0
    assert [r["T"] for r in res["inference"]["rows"]] == list(dc.SMOKE.infer_steps)

    targets = report["targets"]
    assert [t["key"] for t in targets] == [t.key for t in dc.TARGETS]
    assert all(t["status"] == "n/a (cpu smoke)" and t["value"] is not None for t in targets)
    assert all(t.get("bottleneck") for t, spec in zip(targets, dc.TARGETS) if spec.diagnose)
    assert printed.count("[n/a (cpu smoke)]") == len(dc.TARGETS) and "torch.compile skipped" in printed

    md = (tmp_path / "device_check.md").read_text()
    for heading in ("## Targets", "## Parity, CPU vs device", "## Degradation throughput", "## make-dataset",
                    "## Training", "## LLDif label-free inference", "## Sections"):
        assert heading in md
    assert "| kosugi_edit | 0 | 0 | 0 |" in md


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    assert dc.main(["--cpu-smoke", "--sections", "nope", "--out", str(tmp_path)]) == 2
    assert "--sections takes names from environment" in capsys.readouterr().err
    assert dc.main(["--cpu-smoke", "--budget", "-1", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "device_check.json").exists()
