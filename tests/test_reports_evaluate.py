"""Figures and the darkness sweep computed from (untrained, tiny) run directories in the harness's
format: a resnet18 run for Figs. 5/6 and the sweep, a tiny LLDif run for Figs. 7/8."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from lldif_bench.emotions import CANONICAL
from lldif_bench.errors import UserError


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from lldif_bench.synthetic.writer import MIN_IMAGES, generate_synthetic

    root = tmp_path_factory.mktemp("syn") / "synthetic" / "clear"
    generate_synthetic(root, MIN_IMAGES, 32, 0, progress=False)
    return root


def _fake_run(root, method, image_size, method_options=None):
    """A run directory as ``lldif-bench run`` leaves it (config.yaml + checkpoints/last.safetensors),
    holding freshly initialised weights: enough to exercise every evaluation path."""
    from lldif_bench.methods import load_all_methods
    from lldif_bench.training import checkpoint as ckpt
    from lldif_bench.training.config import RunConfig
    from lldif_bench.training.engine import build_method, enter_stage, method_stages

    cfg = RunConfig(method=method, image_size=image_size, method_options=dict(method_options or {}))
    model = build_method(cfg, len(CANONICAL), 16)
    for stage in method_stages(load_all_methods().get(method)):
        enter_stage(model, stage["name"])
    run = root / f"{method}-synthetic-low-light-s0"
    (run / "checkpoints").mkdir(parents=True)
    ckpt.save_weights(model, run / "checkpoints" / ckpt.LAST)
    doc = {"package_version": "test", "config": cfg.to_dict(),
           "dataset": {"name": "synthetic", "condition": "low-light", "class_names": list(CANONICAL),
                       "num_train": 16, "num_test": 8}}
    (run / "config.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return run


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory):
    return _fake_run(tmp_path_factory.mktemp("runs"), "resnet18", 32)


def test_confidence_and_features_from_a_run(resnet_run, data_dir, tmp_path):
    from lldif_bench.reports import evaluate

    conf = evaluate.run_confidence(resnet_run, data_dir, "clear", device="cpu")
    n_test = 14  # MIN_IMAGES: 2 test images per class
    assert len(conf.confidence) == n_test and ((conf.confidence >= 1 / 7 - 1e-6) & (conf.confidence <= 1)).all()
    cached = list((resnet_run / "eval").glob("*/predictions.csv"))
    assert len(cached) == 1 and len(pd.read_csv(cached[0])) == n_test
    panel = evaluate.run_features(resnet_run, data_dir, "low-light", device="cpu")
    assert panel.features.shape == (n_test, 512) and panel.method == "ResNet-18"
    again = evaluate.run_features(resnet_run, data_dir, "low-light", device="cpu")  # from the cache
    assert np.array_equal(again.features, panel.features)


def test_head_hook_features_equal_method_features(resnet_run, data_dir):
    """The fallback used for methods without features(): the classifier head's input."""
    from lldif_bench.reports import evaluate

    run = evaluate.load_trained(resnet_run, "cpu")
    split = evaluate.load_test_split(data_dir, run.image_size)
    _, direct = evaluate.infer(run, split.images, split.landmarks, features=True)
    features = run.model.features
    try:
        run.model.features = None  # hide it: infer must read the head's input instead
        _, hooked = evaluate.infer(run, split.images, split.landmarks, features=True)
    finally:
        run.model.features = features
    assert np.allclose(direct, hooked, atol=1e-5)


def test_darkness_sweep(resnet_run, data_dir, tmp_path):
    from degradations import load_preset
    from lldif_bench.cli.main import main
    from lldif_bench.reports import sweep

    assert sweep.parse_ev_range("-0.5:-5:0.5") == [-0.5 * k for k in range(1, 11)]
    assert sweep.parse_ev_range("-1,-3") == [-1.0, -3.0]
    with pytest.raises(UserError):
        sweep.parse_ev_range("a:b")
    test, _ = sweep.load_clean_test(data_dir)
    preset = load_preset("paper")
    bright, dark = (np.mean([im.mean() for im in sweep.darken(test, ev, preset, 0)]) for ev in (-0.5, -4.0))
    assert dark < bright < np.mean([im.mean() for im in test.images])
    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, ["sweep", "darkness", "--run", str(resnet_run), "--data", str(data_dir),
                                       "--ev", "-1:-3:2", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "sweep.csv")
    assert frame.ev.tolist() == [-1.0, -3.0] and frame.accuracy.between(0, 100).all()
    assert (out / "sweep.png").stat().st_size > 1000 and (out / "sweep.pdf").is_file()


def test_lldif_epd_steps_and_iterations(data_dir, tmp_path):
    from lldif_bench.reports import evaluate, figures

    run = _fake_run(tmp_path, "lldif", 56, {"config": "tiny"})  # 56: LLDif's smallest input
    emb, labels, cache = evaluate.run_epd_steps(run, data_dir, device="cpu")
    assert sorted(emb) == [0, 1, 2, 3, 4] and cache.is_file()  # T = 4: Z_4 … Z_0
    assert all(v.shape == (len(labels), 32) for v in emb.values())
    its, acc = evaluate.run_iterations(run, data_dir, [1, 8], device="cpu")
    assert its == [1, 8] and all(0 <= a <= 100 for a in acc)
    loaded = evaluate.load_trained(run, "cpu")
    assert loaded.model.student.diffusion.timesteps == 4  # restored after the T sweep
    assert figures.plot_iterations(its, acc, tmp_path / "fig8.png")[0].is_file()


def test_non_lldif_run_is_refused_for_diffusion_figures(resnet_run, data_dir):
    from lldif_bench.reports import evaluate

    with pytest.raises(UserError, match="needs an LLDif run"):
        evaluate.run_epd_steps(resnet_run, data_dir, device="cpu")
