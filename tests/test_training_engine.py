"""The training loop end to end on a tiny fixture: outputs, falling loss, resume equality, stages, predict."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml
from click.testing import CliRunner
from test_training_support import make_folder_dataset, quiet_config, weights_of

from lldif_bench.errors import UserError
from lldif_bench.training import run_training

NO_AUG = {"hflip": 0.0, "crop_p": 0.0, "erase_p": 0.0}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_folder_dataset(tmp_path_factory.mktemp("fer") / "tinyfer", grey_every=5)


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    run_dir = run_training(quiet_config(method="toy-test", data=str(data), out=str(out), epochs=4, augment=NO_AUG))
    return run_dir


def test_run_writes_every_output_and_the_loss_falls(finished_run, data):
    run_dir = finished_run
    assert run_dir.name == "toy-test-tinyfer-clear-s0"
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2, 3, 4]
    assert metrics["train_loss"].iloc[-1] < 0.8 * metrics["train_loss"].iloc[0]
    results = json.loads((run_dir / "results.json").read_text())
    final, best = results["final"], results["best"]
    assert results["epochs"] == 4 and results["condition"] == "clear" and results["num_test"] == 21
    assert 0.0 <= final["accuracy"] <= 1.0 and final["accuracy"] > 1 / 7   # learns beyond chance
    assert sum(map(sum, final["confusion_matrix"])) == 21
    assert "test-selected" in best["selection"] and best["accuracy"] >= final["accuracy"]
    preds = pd.read_csv(run_dir / "predictions.csv")
    assert len(preds) == 21 and {"path", "label", "prediction", "p_happiness"} <= set(preds.columns)
    assert preds.filter(like="p_").sum(axis=1).sub(1).abs().max() < 1e-4
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["package_version"] and cfg["config"]["lr"] == 0.02  # method DEFAULTS over the suite's 3.5e-4
    assert cfg["config"]["weight_decay"] == 1e-4                   # suite default kept
    state = torch.load(run_dir / "checkpoints" / "state.pt", weights_only=True)
    assert state["epoch"] == 3 and state["complete"]
    assert (run_dir / "checkpoints" / "best.safetensors").is_file()
    board = pd.read_csv(run_dir.parent / "leaderboard.csv")
    row = board.iloc[-1]
    assert (row["method"], row["dataset"], row["condition"], row["epochs"]) == ("toy-test", "tinyfer", "clear", 4)
    assert row["accuracy"] == pytest.approx(final["accuracy"], abs=1e-6)


def test_existing_run_needs_resume_and_same_settings(finished_run, data):
    out = finished_run.parent
    with pytest.raises(UserError, match="already exists"):
        run_training(quiet_config(method="toy-test", data=str(data), out=str(out), epochs=4, augment=NO_AUG))
    with pytest.raises(UserError, match="lr"):
        run_training(quiet_config(method="toy-test", data=str(data), out=str(out), epochs=4, lr=0.5,
                                  augment=NO_AUG, resume=True))


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(data, tmp_path):
    # dropout + the default augmentation: every random draw must replay identically after a resume
    common = {"method": "toy-test", "data": str(data), "out": str(tmp_path), "method_options": {"dropout": 0.3},
              "leaderboard": False}
    straight = run_training(quiet_config(**common, epochs=2, name="straight"))
    run_training(quiet_config(**common, epochs=1, name="killed"))
    resumed = run_training(quiet_config(**common, epochs=2, name="killed", resume=True))
    a = weights_of(straight / "checkpoints" / "last.safetensors")
    b = weights_of(resumed / "checkpoints" / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    la = pd.read_csv(straight / "metrics.csv")["train_loss"].tolist()
    lb = pd.read_csv(resumed / "metrics.csv")["train_loss"].tolist()
    assert la == lb
    assert json.loads((straight / "results.json").read_text())["final"] == \
        json.loads((resumed / "results.json").read_text())["final"]


def test_stage_seam_trains_stages_in_order_with_their_own_settings(data, tmp_path):
    common = {"method": "toy-staged-test", "data": str(data), "out": str(tmp_path),
              "augment": NO_AUG, "leaderboard": False}
    whole = run_training(quiet_config(**common, name="whole"))
    ck = whole / "checkpoints"
    warm, tune = weights_of(ck / "warm" / "last.safetensors"), weights_of(ck / "tune" / "last.safetensors")
    # warm trained only the conv: its head is still the seed-0 initialisation
    from lldif_bench.training.engine import build_method

    init = build_method(quiet_config(**common), 7, 42).state_dict()
    assert torch.equal(warm["head.weight"], init["head.weight"])
    assert not torch.equal(warm["features.weight"], init["features.weight"])
    # tune started from warm, kept the conv frozen, trained the head and the module it added
    assert torch.equal(tune["features.weight"], warm["features.weight"])
    assert not torch.equal(tune["head.weight"], warm["head.weight"]) and "extra.weight" in tune
    assert torch.equal(weights_of(ck / "last.safetensors")["extra.weight"], tune["extra.weight"])
    metrics = pd.read_csv(whole / "metrics.csv")
    assert list(zip(metrics["stage"], metrics["epoch"])) == [("warm", 1), ("tune", 1), ("tune", 2)]
    assert metrics.loc[0, "lr"] == 0.05 and metrics.loc[1, "lr"] == 0.02   # the stage's own lr
    # one stage at a time, each in a fresh model, gives the same final weights
    with pytest.raises(UserError, match="warm"):
        run_training(quiet_config(**common, name="split", stage="tune"))
    run_training(quiet_config(**common, name="split", stage="warm"))
    split = run_training(quiet_config(**common, name="split", stage="1"))
    final_a, final_b = weights_of(ck / "last.safetensors"), weights_of(split / "checkpoints" / "last.safetensors")
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    assert (split / "results.json").is_file()


def test_predict_needs_no_labels(finished_run, data, tmp_path):
    from lldif_bench.cli.main import main

    loose = tmp_path / "loose"
    loose.mkdir()
    for src in sorted((data / "test" / "happiness").iterdir()):
        (loose / src.name).write_bytes(src.read_bytes())
    (loose / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "preds.csv"
    result = CliRunner().invoke(main, ["predict", "--run", str(finished_run), str(loose), "--out", str(out),
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(out)
    assert len(preds) == 3 and "label" not in preds.columns            # the broken file is skipped
    assert set(preds["prediction"]) <= {"surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"}
    train_preds = pd.read_csv(finished_run / "predictions.csv")
    mine = train_preds[train_preds["path"].str.startswith("test/happiness/")].sort_values("path")
    assert list(preds.sort_values("path")["p_happiness"].round(4)) == list(mine["p_happiness"].round(4))


@pytest.mark.slow
def test_every_registered_method_runs_through_the_harness(tmp_path):
    """`run` for every registered method (one short epoch): results.json and a leaderboard row each."""
    import numpy as np

    from lldif_bench.landmarks.fallback import canonical_shape_in_crop
    from lldif_bench.methods import load_all_methods

    data = make_folder_dataset(tmp_path / "tinyfer", per_class_train=4, per_class_test=2, size=56)
    rel = sorted(str(p.relative_to(data)) for p in data.rglob("*.png"))
    np.savez(data / "landmarks.npz", relpath=np.array(rel),
             points=np.repeat(canonical_shape_in_crop(56, 56)[None], len(rel), 0).astype(np.float32))
    names = [n for n in load_all_methods().names() if not n.endswith("-test")]
    for name in names:
        extra = {"image_size": 112, "method_options": {"config": "tiny"}} if name == "lldif" else {"image_size": 64}
        cfg = quiet_config(method=name, data=str(data), out=str(tmp_path / "runs"), epochs=1, batch_size=8,
                           limit_batches=2, **extra)
        run_dir = run_training(cfg)
        assert (run_dir / "results.json").is_file(), name
    board = pd.read_csv(tmp_path / "runs" / "leaderboard.csv")
    assert sorted(board["method"]) == sorted(names)


class _NoTrainLogits(torch.nn.Module):
    """Trains a loss without logits (as LLDif's stage 2a); evaluates with logits."""

    def __init__(self, num_classes):
        super().__init__()
        self.head = torch.nn.Linear(3, num_classes)

    def predict(self, images, landmarks=None):
        return self.head(images.mean(dim=(2, 3)))

    def forward(self, batch):
        logits = self.predict(batch["image"])
        return {"aux": logits} if self.training else {"logits": logits}

    def loss(self, outputs, batch):
        return (outputs.get("aux", outputs.get("logits")) ** 2).mean(), {}


def test_a_stage_without_training_logits_logs_no_train_accuracy(data, tmp_path):
    from lldif_bench.methods import METHODS

    if "no-logits-test" not in METHODS:
        METHODS.add("no-logits-test", lambda k, **kw: _NoTrainLogits(k), "test toy method")
    run = run_training(quiet_config(method="no-logits-test", data=str(data), out=str(tmp_path), epochs=1,
                                    image_size=32, leaderboard=False, augment=NO_AUG))
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["train_accuracy"].isna().all() and metrics["test_accuracy"].notna().all()
