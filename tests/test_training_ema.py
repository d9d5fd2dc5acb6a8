"""EMA of the weights in the harness: the average itself, evaluation/checkpoints on it, exact resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from test_training_support import make_folder_dataset, quiet_config, weights_of
from torch import nn

from lldif_bench.errors import UserError
from lldif_bench.training import run_training
from lldif_bench.training.ema import ParamEMA, effective_decay

NO_AUG = {"hflip": 0.0, "crop_p": 0.0, "erase_p": 0.0}


def test_average_follows_the_warmed_up_decay_and_skips_frozen_parameters():
    net = nn.Linear(2, 1)
    net.bias.requires_grad_(False)
    ema = ParamEMA(net, 0.999)
    assert ema.names == ["weight"]
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    d1 = effective_decay(0.999, 1)
    assert d1 == pytest.approx(2 / 11)
    assert torch.allclose(ema.shadow["weight"], d1 * start + (1 - d1) * (start + 1))
    assert effective_decay(0.999, 10 ** 6) == 0.999
    trained = net.weight.detach().clone()
    with ema.applied(net):
        assert torch.allclose(net.weight, ema.shadow["weight"])
    assert torch.equal(net.weight, trained)        # the trained values come back
    other = ParamEMA(net, 0.999)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and torch.equal(other.shadow["weight"], ema.shadow["weight"])
    with pytest.raises(ValueError, match="missing"):
        ParamEMA(nn.Linear(2, 1), 0.9).load_state_dict({"updates": 0, "shadow": {}})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_folder_dataset(tmp_path_factory.mktemp("fer") / "emafer")


def test_run_evaluates_and_saves_the_ema_weights_and_resumes_exactly(data, tmp_path):
    common = {"method": "toy-test", "data": str(data), "out": str(tmp_path), "leaderboard": False,
              "augment": NO_AUG, "ema_decay": 0.9}
    straight = run_training(quiet_config(**common, epochs=2, name="straight"))
    state = torch.load(straight / "checkpoints" / "state.pt", weights_only=True)
    last = weights_of(straight / "checkpoints" / "last.safetensors")
    shadow, raw = state["ema"]["shadow"], state["trained_params"]
    assert state["ema"]["updates"] == 2 * 3  # 42 images / batch 16 = 3 steps per epoch
    assert all(torch.equal(last[k], shadow[k]) for k in shadow)              # last = the average
    assert any(not torch.equal(shadow[k], raw[k]) for k in shadow)           # … not the trained values
    # the reported accuracy is the EMA model's: predictions.csv equals a re-evaluation of `last`
    from lldif_bench.training.predict import load_run

    model, _, _ = load_run(straight, device="cpu")
    assert all(torch.equal(model.state_dict()[k], last[k]) for k in last)
    run_training(quiet_config(**common, epochs=1, name="killed"))
    resumed = run_training(quiet_config(**common, epochs=2, name="killed", resume=True))
    again = torch.load(resumed / "checkpoints" / "state.pt", weights_only=True)
    assert all(torch.equal(raw[k], again["trained_params"][k]) for k in raw)
    assert all(torch.equal(last[k], v) for k, v in weights_of(resumed / "checkpoints" / "last.safetensors").items())
    assert json.loads((straight / "results.json").read_text())["final"] == \
        json.loads((resumed / "results.json").read_text())["final"]
    with pytest.raises(UserError, match="ema_decay"):  # the average is part of what a resume must keep
        run_training(quiet_config(**{**common, "ema_decay": 0.5}, epochs=3, name="killed", resume=True))


def test_without_ema_nothing_changes_and_a_bad_decay_is_refused(data, tmp_path):
    run = run_training(quiet_config(method="toy-test", data=str(data), out=str(tmp_path), epochs=1,
                                    leaderboard=False, augment=NO_AUG))
    state = torch.load(run / "checkpoints" / "state.pt", weights_only=True)
    assert "ema" not in state and "trained_params" not in state
    assert not pd.read_csv(run / "metrics.csv")["train_accuracy"].isna().any()
    with pytest.raises(UserError, match="ema_decay"):
        run_training(quiet_config(method="toy-test", data=str(data), out=str(tmp_path), ema_decay=1.0))
