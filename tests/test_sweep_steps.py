"""`lldif-bench sweep steps` (Fig. 8): phase 2 retrained per T from a finished run's stages 0-1."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from safetensors.torch import load_file
from test_training_support import make_folder_dataset

from lldif_bench.cli.main import main
from lldif_bench.landmarks.fallback import canonical_shape_in_crop


@pytest.mark.slow  # two tiny LLDif pipelines
def test_sweep_steps_reuses_stages_0_1_and_trains_phase2_per_T(tmp_path):
    data = make_folder_dataset(tmp_path / "tinyfer", per_class_train=3, per_class_test=2, size=56)
    rel = sorted(str(p.relative_to(data)) for p in data.rglob("*.png"))
    np.savez(data / "landmarks.npz", relpath=np.array(rel),
             points=np.repeat(canonical_shape_in_crop(56, 56)[None], len(rel), 0).astype(np.float32))
    runs = tmp_path / "runs"
    common = ["--limit-batches", "1", "--no-progress", "--workers", "1"]
    result = CliRunner().invoke(main, ["run", "--method", "lldif", "--data", str(data), "--config", "tiny",
                                       "--out", str(runs), "--name", "base", *common])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["sweep", "steps", "--run", str(runs / "base"), "--steps", "1,4",
                                       "--run-args", " ".join(common)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(runs / "steps-base.csv")
    assert list(table["T"]) == [1, 4] and list(table["run"]) == ["base-T1", "base"]
    assert table["accuracy"].between(0, 100).all() and table["acc_fed_shuffled_zhat"].notna().all()
    branched = runs / "base-T1"
    assert json.loads((branched / "branched_from.json").read_text()) == {"run": "base", "stages": ["0", "1"]}
    import yaml

    saved = yaml.safe_load((branched / "config.yaml").read_text())["config"]
    assert saved["method_options"]["diffusion"]["timesteps"] == 1
    one, four = (load_file(str(r / "checkpoints" / "1" / "last.safetensors")) for r in (branched, runs / "base"))
    assert all(v.equal(four[k]) for k, v in one.items())
    # rerunning reuses the finished runs
    again = CliRunner().invoke(main, ["sweep", "steps", "--run", str(runs / "base"), "--steps", "1,4"])
    assert again.exit_code == 0 and "T = " not in again.output
