"""Figures are written (PNG + PDF, non-empty) from tiny hand-made predictions and feature files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lldif_bench.emotions import CANONICAL
from lldif_bench.errors import UserError
from lldif_bench.reports import evidence, figures


def _blobs(n=42, d=8, seed=0, shift=3.0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    centres = rng.normal(size=(7, d)) * shift
    return (centres[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


def _assert_written(paths):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    for p in paths:
        assert p.is_file() and p.stat().st_size > 1000
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _predictions(path, seed, acc):
    rng = np.random.default_rng(seed)
    n = 35
    labels = np.arange(n) % 7
    logits = rng.normal(size=(n, 7))
    right = rng.random(n) < acc
    logits[np.arange(n), labels] += np.where(right, 4.0, -4.0)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    frame = pd.DataFrame({"path": [f"img{i}.jpg" for i in range(n)],
                          "label": [CANONICAL[k] for k in labels], "prediction": probs.argmax(1)})
    for k, name in enumerate(CANONICAL):
        frame[f"prob_{name}"] = probs[:, k]
    frame.to_csv(path, index=False)
    return (probs.argmax(1) == labels).mean()


def test_tsne_grid_from_feature_files(tmp_path):
    panels = []
    for method in ("LLDif", "SCN"):
        for cond, shift in (("clear", 4.0), ("low-light", 1.0)):
            f, y = _blobs(shift=shift, seed=len(panels))
            path = evidence.save_features(tmp_path / f"{method}-{cond}.npz", f, y, method, cond)
            panels.append(evidence.feature_panel(path))
    assert panels[1].condition == "low-light" and panels[2].method == "SCN"
    _assert_written(figures.plot_tsne_grid(panels, tmp_path / "fig5.png", max_points=30,
                                               tsne_iterations=250))


def test_confidence_from_predictions(tmp_path):
    sets = []
    for method, acc in (("DAN", 0.6), ("LLDif", 0.9)):
        for cond in ("clear", "low-light"):
            path = tmp_path / f"{method}-{cond}.csv"
            expected = _predictions(path, len(sets), acc)
            s = evidence.confidence_set(path, method, cond)
            assert s.correct.mean() == pytest.approx(expected)
            assert ((s.confidence > 0) & (s.confidence <= 1)).all()
            sets.append(s)
    _assert_written(figures.plot_confidence(sets, tmp_path / "fig6.png"))


def test_diffusion_steps_and_iterations(tmp_path):
    rng = np.random.default_rng(0)
    final, labels = _blobs(n=35, d=16)
    emb = {t: final * (1 - t / 4) + rng.normal(size=final.shape) * t for t in range(5)}
    path = evidence.save_step_embeddings(tmp_path / "epd.npz", emb, labels)
    back, lab = evidence.read_step_embeddings(path)
    assert sorted(back) == [0, 1, 2, 3, 4] and np.allclose(back[2], emb[2], atol=1e-5)
    _assert_written(figures.plot_diffusion_steps(back, lab, tmp_path / "fig7.png", tsne_iterations=250))
    csv = tmp_path / "iters.csv"
    pd.DataFrame({"iterations": [1, 2, 4, 10, 50], "accuracy": [0.5, 0.6, 0.7, 0.7, 0.69]}).to_csv(csv, index=False)
    its, acc = evidence.read_iterations(csv)
    assert acc[0] == pytest.approx(50.0)
    _assert_written(figures.plot_iterations(its, acc, tmp_path / "fig8.png"))


def test_sweep_chart(tmp_path):
    evs = [-0.5, -1.0, -2.0, -4.0]
    _assert_written(figures.plot_sweep({"a": (evs, [90, 85, 70, 40]), "b": (evs, [88, 86, 80, 60])},
                                       tmp_path / "sweep.png"))


def test_kde_integrates_to_one():
    grid = np.linspace(-1, 2, 3001)
    dens = figures.kde_curve(np.array([0.2, 0.5, 0.55, 0.9]), grid)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-3)
    unit = np.linspace(0, 1, 2001)
    bounded = figures.kde_curve(np.array([0.01, 0.5, 0.98, 0.99]), unit, bounds=(0.0, 1.0))
    assert np.trapezoid(bounded, unit) == pytest.approx(1.0, abs=5e-3)  # unbounded loses ~15 %


def test_bad_figure_inputs(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        evidence.feature_panel(tmp_path / "none.npz")
    np.savez(tmp_path / "bad.npz", features=np.zeros((3, 2)))
    with pytest.raises(UserError, match="lacks array"):
        evidence.feature_panel(tmp_path / "bad.npz")
    pd.DataFrame({"path": ["a"], "label": [0]}).to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(UserError, match="prediction"):
        evidence.read_predictions(tmp_path / "p.csv")
    with pytest.raises(UserError, match="at least 5"):
        figures.tsne_embed(np.zeros((3, 4)))


def test_plot_cli_from_files(tmp_path):
    from click.testing import CliRunner

    from lldif_bench.cli.main import main

    runner = CliRunner()
    f, y = _blobs()
    evidence.save_features(tmp_path / "a.npz", f, y, "LLDif", "clear")
    result = runner.invoke(main, ["plot", "tsne", "--features", f"SCN@low-light={tmp_path / 'a.npz'}",
                                  "--out", str(tmp_path / "fig5.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "fig5.png").stat().st_size > 1000 and (tmp_path / "fig5.pdf").is_file()
    _predictions(tmp_path / "p.csv", 0, 0.7)
    result = runner.invoke(main, ["plot", "confidence", "--predictions", f"DAN@clear={tmp_path / 'p.csv'}",
                                  "--out", str(tmp_path / "fig6.png")])
    assert result.exit_code == 0, result.output
    assert "mean confidence" in result.output and (tmp_path / "fig6.png").is_file()
    pd.DataFrame({"iterations": [1, 4], "accuracy": [50.0, 70.0]}).to_csv(tmp_path / "it.csv", index=False)
    result = runner.invoke(main, ["plot", "iterations", "--csv", str(tmp_path / "it.csv"), "--out",
                                  str(tmp_path / "fig8.png")])
    assert result.exit_code == 0 and (tmp_path / "fig8.png").is_file()
    result = runner.invoke(main, ["plot", "confidence", "--predictions", str(tmp_path / "p.csv"), "--out",
                                  str(tmp_path / "x.png")])
    assert result.exit_code != 0 and "METHOD@CONDITION" in result.output
    result = runner.invoke(main, ["plot", "tsne", "--out", str(tmp_path / "y.png")])
    assert result.exit_code != 0 and "--features" in result.output
