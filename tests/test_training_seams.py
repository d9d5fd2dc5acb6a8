"""Stage selection by name prefix and methods' named configs (`--stage 2`, `--config tiny`)."""

from __future__ import annotations

import pytest

from lldif_bench.errors import UserError
from lldif_bench.training.config import named_config, resolve_config
from lldif_bench.training.engine import select_stages

LLDIF_LIKE = [{"name": n} for n in ("0", "1", "2a", "2b")]


def test_select_stages_by_name_prefix_and_index():
    assert select_stages(LLDIF_LIKE, None) == [0, 1, 2, 3]
    assert select_stages(LLDIF_LIKE, "2") == [2, 3]  # "2" = stage 2a then 2b
    assert select_stages(LLDIF_LIKE, "2b") == [3]
    assert select_stages(LLDIF_LIKE, "1") == [1]
    plain = [{"name": n} for n in ("warmup", "main", "finetune")]
    assert select_stages(plain, "2") == [2]
    with pytest.raises(UserError, match="stages are warmup, main, finetune"):
        select_stages(plain, "9")


def test_named_config_resolves_a_methods_shipped_yaml(tmp_path):
    class Builder:
        CONFIG_DIR = tmp_path

    (tmp_path / "tiny.yaml").write_text("epochs: 1\n")
    assert named_config(Builder, "tiny") == tmp_path / "tiny.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("epochs: 2\n")
    assert named_config(Builder, str(own)) == own
    with pytest.raises(UserError, match=r"named configs \(mine, tiny\)"):
        named_config(Builder, "huge")


def test_lldif_tiny_config_by_name():
    cfg = resolve_config({"method": "lldif", "data": "somewhere"}, "tiny")
    assert cfg.method_options["config"] == "tiny" and cfg.stages["2b"]["epochs"] == 2
