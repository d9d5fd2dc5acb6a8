"""Run configuration: precedence (suite < method DEFAULTS < YAML < CLI) and clear errors for bad values."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_training_support import make_folder_dataset  # noqa: F401  (registers the toy methods)

from lldif_bench.errors import UserError
from lldif_bench.registry import RegistryError
from lldif_bench.training.config import RunConfig, apply_overrides, resolve_config


def test_precedence_suite_then_method_then_file_then_cli(tmp_path):
    suite = RunConfig()
    assert (suite.optimizer, suite.lr, suite.batch_size, suite.weight_decay, suite.epochs) == ("adam", 3.5e-4, 64, 1e-4, 200)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("epochs: 7\nbatch_size: 8\naugment:\n  hflip: 0.0\n  erase_scale: [0.05, 0.1]\n")
    cfg = resolve_config({"method": "toy-test", "data": "d", "batch_size": 4, "lr": None}, cfg_file)
    assert cfg.lr == 0.02            # method DEFAULTS beat the suite default
    assert cfg.epochs == 7           # the file beats the method's 3
    assert cfg.batch_size == 4       # the CLI beats the file
    assert cfg.augment.hflip == 0.0 and cfg.augment.erase_scale == (0.05, 0.1)
    assert cfg.weight_decay == 1e-4  # untouched suite default


@pytest.mark.parametrize("values, message", [
    ({"lr": -1.0}, "lr must be a positive number"),
    ({"lr": 0}, "lr must be a positive number"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"batch_size": 2.5}, "batch_size must be int"),
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"image_size": 8}, "image_size"),
    ({"optimizer": "adagrad-ish"}, "unknown optimizer 'adagrad-ish'"),
    ({"scheduler": "wavy"}, "unknown scheduler 'wavy'"),
    ({"learning_rate": 0.1}, "unknown key(s) learning_rate"),
    ({"augment": {"hflip": 1.5}}, "augment.hflip"),
    ({"augment": {"erase_scale": [0.5, 0.1]}}, "augment.erase_scale"),
    ({"augment": {"flip": 0.5}}, "unknown augment key(s) flip"),
    ({"amp": "maybe"}, "amp must be bool"),
    ({"stages": {"s1": {"momentum": 0.9}}}, "stages.s1: unknown key(s) momentum"),
    ({"device": "tpu"}, "device must be one of"),
])
def test_bad_values_are_clear_user_errors(values, message):
    with pytest.raises((UserError, RegistryError)) as err:
        apply_overrides(RunConfig(method="toy-test", data="d"), values, "test").validate()
    assert message in str(err.value)


def test_unknown_method_and_bad_files(tmp_path):
    with pytest.raises(RegistryError, match="unknown method 'nope'; available: .*resnet18"):
        resolve_config({"method": "nope", "data": "d"})
    with pytest.raises(UserError, match="does not exist"):
        resolve_config({"method": "toy-test", "data": "d"}, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    with pytest.raises(UserError, match="not valid YAML"):
        resolve_config({"method": "toy-test", "data": "d"}, bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="must hold a mapping"):
        resolve_config({"method": "toy-test", "data": "d"}, bad)


def test_cli_reports_bad_values_in_one_line(tmp_path):
    from lldif_bench.cli.main import main

    result = CliRunner().invoke(main, ["run", "--method", "toy-test", "--data", str(tmp_path), "--lr", "-3"])
    assert result.exit_code != 0
    assert "lr must be a positive number" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["run", "--method", "toy-test", "--data", str(tmp_path / "nothing"),
                                       "--epochs", "1"])
    assert result.exit_code != 0 and "does not exist" in result.output and "Traceback" not in result.output


def test_methods_command_lists_registered_methods():
    from lldif_bench.cli.main import main

    result = CliRunner().invoke(main, ["methods"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "toy-test" in lines and "[stages: warm, tune]" in lines["toy-staged-test"]


def test_stage_values_sit_between_method_defaults_and_user_settings():
    spec = {"name": "warm", "epochs": 1, "lr": 0.05}
    plain = resolve_config({"method": "toy-staged-test", "data": "d"})
    assert (plain.epochs, plain.for_stage("warm", spec).epochs, plain.for_stage("warm", spec).lr) == (2, 1, 0.05)
    user = resolve_config({"method": "toy-staged-test", "data": "d", "epochs": 3})
    assert user.for_stage("warm", spec).epochs == 3 and user.for_stage("warm", spec).lr == 0.05
    over = apply_overrides(user, {"stages": {"warm": {"epochs": 5}}}, "test")
    assert over.for_stage("warm", spec).epochs == 5


def test_dataset_name_and_condition_for_run_names(tmp_path):
    from lldif_bench.training.engine import describe_data

    ll = tmp_path / "LL-RAF-DB"
    ll.mkdir()
    (ll / "dataset.json").write_text('{"adapter": "rafdb", "preset": "paper"}')
    syn = tmp_path / "syn"
    (syn / "clear").mkdir(parents=True)
    (syn / "lowlight").mkdir()
    assert describe_data(ll) == ("LL-RAF-DB", "low-light")
    assert describe_data(syn) == ("syn", "clear")
    assert describe_data(syn / "clear") == ("syn", "clear")
    assert describe_data(syn / "lowlight") == ("syn", "low-light")


def test_the_suite_synthetic_data_is_named_synthetic_in_any_folder(tmp_path):
    """The demo writes OUT/data/{clear,lowlight}: its runs must land in reports' synthetic rows (they
    were named "data" and `report` found no run for any table)."""
    from lldif_bench.reports.runs import dataset_key
    from lldif_bench.training.engine import describe_data

    clear, low = tmp_path / "data" / "clear", tmp_path / "data" / "lowlight"
    clear.mkdir(parents=True)
    low.mkdir()
    (clear / "synthetic.json").write_text("{}")
    (low / "dataset.json").write_text(json.dumps({"adapter": "rafdb", "preset": "realistic", "source": str(clear)}))
    assert describe_data(clear) == ("synthetic", "clear")
    assert describe_data(low) == ("synthetic", "low-light")
    assert dataset_key(describe_data(low)[0]) == "synthetic"
