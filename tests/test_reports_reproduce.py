"""The reproduce plan: every cell of a table, statuses from the runs folder, commands, cost estimate."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from lldif_bench.errors import UserError
from lldif_bench.reports import reproduce
from lldif_bench.reports.tables import get_table


def _fake_rafdb(root):
    """A two-image RAF-DB 'basic' layout (the adapter counts records; images are not decoded)."""
    (root / "EmoLabel").mkdir(parents=True)
    (root / "Image" / "aligned").mkdir(parents=True)
    lines = ["train_00001.jpg 1", "train_00002.jpg 4", "train_00003.jpg 7", "test_0001.jpg 2"]
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        stem = line.split()[0][:-4]
        (root / "Image" / "aligned" / f"{stem}_aligned.jpg").write_bytes(b"\xff\xd8\xff")
    return root


def test_plan_statuses_commands_and_cost(tmp_path):
    data = _fake_rafdb(tmp_path / "ll-raf")
    runs = tmp_path / "runs"
    (runs / "scn-rafdb-low-light-s0").mkdir(parents=True)  # interrupted: resume
    (runs / "dan-rafdb-low-light-s0").mkdir()
    pd.DataFrame([{"method": "dan", "dataset": "rafdb", "condition": "low-light", "accuracy": 0.8, "seed": 0,
                   "run_dir": str(runs / "dan-rafdb-low-light-s0")}]).to_csv(runs / "leaderboard.csv", index=False)
    speeds = {(m, ""): 10.0 for m in get_table(2).methods()}
    plan = reproduce.plan_table(2, {"rafdb": data}, runs, [0, 1], measure=False, throughput=speeds)
    assert len(plan) == 8 * 2  # 8 methods of Table 2 × 2 seeds
    by_name = {r.run_name: r for r in plan}
    assert by_name["dan-rafdb-low-light-s0"].status == "done"
    assert by_name["dan-rafdb-low-light-s1"].status == "todo"
    scn = by_name["scn-rafdb-low-light-s0"]
    assert scn.status == "partial" and "--resume" in scn.command
    assert scn.train_images == 3 and scn.images_source == "counted"
    assert scn.epochs == 70  # SCN's own recipe
    assert scn.est_seconds == pytest.approx(3 * 70 / 10.0)
    lldif = by_name["lldif-rafdb-low-light-s0"]
    assert lldif.epochs == 60 + 200 + 20 + 180  # all LLDif stages
    assert lldif.command[:3] == ["lldif-bench", "run", "--method"] and str(data) in lldif.command
    text = reproduce.format_plan(plan, "cpu")
    assert "1 done, 1 to resume, 14 to start" in text
    assert "lldif-bench run --method scn" in text


def test_table5_variants_and_paper_counts(tmp_path):
    plan = reproduce.plan_table(5, {}, tmp_path / "runs", [0], measure=False)
    assert [r.variant for r in plan] == ["V1", "V2", "V3", "V4"]
    assert plan[0].run_name == "lldif-v1-kdef-low-light-s0"
    assert plan[0].command[-2:] == ["--config", str(reproduce.variant_config_path(tmp_path / "runs", "V1"))]
    path = reproduce.write_variant_config(tmp_path / "runs", "V1")
    from lldif_bench.training.config import load_yaml

    assert load_yaml(path) == {"method_options": {"variant": "V1"}}
    assert plan[0].train_images == 3920 and plan[0].images_source == "paper"
    assert plan[0].est_seconds is None  # never invented without a measurement


def test_data_option_parsing(tmp_path):
    (tmp_path / "a").mkdir()
    assert reproduce.parse_data_options([str(tmp_path / "a")], get_table(4)) == {"kdef": tmp_path / "a"}
    assert reproduce.parse_data_options([f"LL-KDEF={tmp_path / 'a'}"], get_table(4)) == {"kdef": tmp_path / "a"}
    with pytest.raises(UserError, match="KEY=DIR"):
        reproduce.parse_data_options([str(tmp_path / "a")], get_table(1))
    with pytest.raises(UserError, match="does not exist"):
        reproduce.parse_data_options([str(tmp_path / "missing")], get_table(2))


def test_measured_throughput_is_positive():
    assert reproduce.measure_train_throughput("resnet18", device="cpu", batch_size=2, steps=1, image_size=32) > 0


def test_cli_dry_run(tmp_path):
    from lldif_bench.cli.main import main

    data = _fake_rafdb(tmp_path / "ll-raf")
    result = CliRunner().invoke(main, ["reproduce", "--table", "2", "--data", str(data), "--dry-run",
                                       "--no-measure", "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "8 runs: 0 done, 0 to resume, 8 to start" in result.output
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_table5_on_a_named_lldif_config(tmp_path):
    """--lldif-config cpu: every variant's config is the shipped `cpu` run config plus the variant, and
    the epochs are that config's stage epochs (issue 17's Table 5 on the demo data)."""
    from lldif_bench.training.config import load_yaml

    runs = tmp_path / "runs"
    plan = reproduce.plan_table(5, {}, runs, [0, 1], measure=False, lldif_config="cpu")
    assert [r.variant for r in plan] == ["V1", "V1", "V2", "V2", "V3", "V3", "V4", "V4"]
    cpu = reproduce.lldif_run_config("cpu")
    cpu_values = load_yaml(cpu)
    assert plan[0].epochs == sum(int(v["epochs"]) for v in cpu_values["stages"].values())
    config = reproduce.variant_config_path(runs, "V3", cpu)
    assert plan[4].command[-2:] == ["--config", str(config)] and config.name == "lldif-cpu-V3.yaml"
    written = load_yaml(reproduce.write_variant_config(runs, "V3", cpu))
    assert written["method_options"] == {**cpu_values["method_options"], "variant": "V3"}
    assert written["stages"] == cpu_values["stages"] and written["image_size"] == cpu_values["image_size"]
    plan2 = reproduce.plan_table(2, {}, runs, [0], measure=False, lldif_config="cpu")
    lldif = next(r for r in plan2 if r.method == "lldif")
    assert lldif.command[-2:] == ["--config", str(cpu)]
    assert all("--config" not in r.command for r in plan2 if r.method != "lldif")
    with pytest.raises(UserError, match="no such file"):
        reproduce.plan_table(5, {}, runs, [0], measure=False, lldif_config="nope")


@pytest.mark.slow  # four tiny LLDif pipelines: ~6 min on the loaded 2-core machine
def test_table5_variants_branch_from_finished_siblings(tmp_path):
    """V2-V4 take the stages they compute identically from a finished sibling (0-1; V4 also 2a from V2),
    train only the rest, and end with the same stage weights the sibling handed over."""
    import json

    import numpy as np
    from safetensors.torch import load_file
    from test_training_support import make_folder_dataset

    from lldif_bench.landmarks.fallback import canonical_shape_in_crop

    data = make_folder_dataset(tmp_path / "tinyfer", per_class_train=3, per_class_test=2, size=56)
    rel = sorted(str(p.relative_to(data)) for p in data.rglob("*.png"))
    np.savez(data / "landmarks.npz", relpath=np.array(rel),
             points=np.repeat(canonical_shape_in_crop(56, 56)[None], len(rel), 0).astype(np.float32))
    runs = tmp_path / "runs"
    plan = reproduce.plan_table(5, {"kdef": data}, runs, [0], measure=False, lldif_config="tiny",
                                extra_args=["--limit-batches", "1", "--no-progress", "--workers", "1"])
    reproduce.execute_plan(plan, runs, 5)
    names = {r.variant: r.run_name for r in plan}
    assert not (runs / names["V1"] / reproduce.BRANCH_NOTE).exists()
    notes = {v: json.loads((runs / names[v] / reproduce.BRANCH_NOTE).read_text()) for v in ("V2", "V3", "V4")}
    assert notes["V2"]["stages"] == ["0", "1"] and notes["V3"]["stages"] == ["0", "1"]
    assert notes["V4"] == {"run": names["V2"], "stages": ["0", "1", "2a"]}
    def weights(variant, stage):
        return load_file(str(runs / names[variant] / "checkpoints" / stage / "last.safetensors"))
    for variant in ("V2", "V3", "V4"):
        assert all(v.equal(weights("V1", "1")[k]) for k, v in weights(variant, "1").items())
        assert (runs / names[variant] / "results.json").is_file()
    assert all(v.equal(weights("V2", "2a")[k]) for k, v in weights("V4", "2a").items())
    assert not all(v.equal(weights("V2", "2b")[k]) for k, v in weights("V4", "2b").items())
    assert (runs / "table5.md").is_file()
