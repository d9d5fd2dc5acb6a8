"""EPD diagnostics: the functional core on known inputs, and every figure in a tiny LLDif run's outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_training_support import make_folder_dataset, quiet_config

from lldif_bench.models.lldif.diagnostics import (
    epd_figures,
    nearest_centroid_accuracy,
    per_dim_spread,
    shuffle_within_batch,
    summary_line,
)

KEYS = ("kl", "cos", "l1", "spread_z", "spread_zhat", "centroid_acc_z", "centroid_acc_zhat", "collapsed",
        "s1_oracle_acc", "acc_zhat", "acc_zhat_shuffled", "zhat_shuffle_drop")


def test_centroid_accuracy_separates_label_information_from_none():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(25)
    informative = torch.nn.functional.one_hot(labels, 4).float() * 3 + 0.3 * torch.randn(100, 4, generator=gen)
    assert nearest_centroid_accuracy(informative, labels) == 1.0
    noise = torch.randn(100, 4, generator=gen)
    assert nearest_centroid_accuracy(noise, labels) < 0.5
    # a constant prior cannot beat chance (leave-one-out: ties go to the first class, 25%)
    assert nearest_centroid_accuracy(torch.ones(100, 4), labels) <= 0.25 + 1e-6


def test_spread_collapse_flag_and_shuffle():
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(50, 8, generator=gen)
    labels = torch.arange(5).repeat(10)
    assert per_dim_spread(torch.ones(50, 8)) == 0.0
    assert per_dim_spread(z) == pytest.approx(z.std(0, unbiased=False).mean().item())
    same = epd_figures(z, z.clone(), labels, 0.15)
    assert same["kl"] == pytest.approx(0.0, abs=1e-5) and same["cos"] == pytest.approx(1.0)
    assert same["collapsed"] == 0.0 and same["centroid_acc_z"] == same["centroid_acc_zhat"]
    flat = epd_figures(z, z.mean(0, keepdim=True).expand_as(z) + 1e-4 * z, labels, 0.15)
    assert flat["collapsed"] == 1.0 and flat["kl"] > 0.1
    assert "COLLAPSED" in summary_line(flat) and "COLLAPSED" not in summary_line(same)
    assert "COLLAPSED" in summary_line(flat, "2b")
    assert "COLLAPSED" not in summary_line(flat, "1") and "trained from phase 2a" in summary_line(flat, "1")
    # scale is not collapse: the LLformer sees Ẑ's direction (dtnet.z_norm)
    assert epd_figures(z, 0.05 * z, labels, 0.15)["collapsed"] == 0.0
    shuffled = shuffle_within_batch(z)
    assert not (shuffled == z).all(1).any() and torch.equal(shuffled.sort(0).values, z.sort(0).values)


@pytest.mark.parametrize("variant", ["V4"])
def test_tiny_run_writes_diagnostics_per_epoch_and_in_results(tmp_path, variant):
    from lldif_bench.landmarks.fallback import canonical_shape_in_crop
    from lldif_bench.training import run_training

    data = make_folder_dataset(tmp_path / "tinyfer", per_class_train=4, per_class_test=3, size=56)
    rel = sorted(str(p.relative_to(data)) for p in data.rglob("*.png"))
    np.savez(data / "landmarks.npz", relpath=np.array(rel),
             points=np.repeat(canonical_shape_in_crop(56, 56)[None], len(rel), 0).astype(np.float32))
    cfg = quiet_config(method="lldif", data=str(data), out=str(tmp_path / "runs"), epochs=1, batch_size=8,
                       limit_batches=2, image_size=112,
                       method_options={"config": "tiny", "variant": variant})
    run_dir = run_training(cfg)
    metrics = pd.read_csv(run_dir / "metrics.csv")
    later = metrics[metrics["stage"].astype(str) != "0"]
    assert set(later["stage"].astype(str)) == {"1", "2a", "2b"}
    for key in KEYS:
        column = later[f"epd_{key}"]
        assert column.notna().all(), key
    assert metrics[metrics["stage"].astype(str) == "0"].filter(like="epd_").isna().all().all()
    results = json.loads((run_dir / "results.json").read_text())
    diag = results["diagnostics"]
    assert set(diag) == {"1", "2a", "2b"}
    final = diag["2b"]
    for key in KEYS:
        assert f"epd_{key}" in final
    for key in ("s1_oracle_acc", "acc_zhat", "acc_zhat_shuffled", "centroid_acc_z", "centroid_acc_zhat"):
        assert 0.0 <= final[f"epd_{key}"] <= 1.0
    # the label-free accuracy in the diagnostics is the run's reported accuracy (same seeded chain)
    assert final["epd_acc_zhat"] == pytest.approx(results["final"]["accuracy"])
    assert final["epd_spread_z"] > 0
    # `lldif-bench report` shows them: one row per LLDif run
    from lldif_bench.reports.epd import epd_table

    table = epd_table(tmp_path / "runs")
    assert list(table["run"]) == [run_dir.name]
    assert table["acc fed Ẑ (%)"].iloc[0] == pytest.approx(100 * final["epd_acc_zhat"], abs=0.01)
    assert table["collapsed"].iloc[0] in ("YES", "no")
    # CSV output stays one parseable table; the diagnostics go to a file beside it
    from click.testing import CliRunner

    from lldif_bench.cli.main import main

    out = tmp_path / "tables.csv"
    result = CliRunner().invoke(main, ["report", "--runs", str(tmp_path / "runs"), "--format", "csv",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "run" not in pd.read_csv(out).columns and "ours" in pd.read_csv(out).columns
    assert list(pd.read_csv(tmp_path / "tables_epd.csv")["run"]) == [run_dir.name]
    result = CliRunner().invoke(main, ["report", "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 0 and "LLDif EPD diagnostics" in result.output
