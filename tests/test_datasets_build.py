"""make-dataset end to end on exact-layout fixtures: outputs, manifest, bad input, resume, shards."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fixtures_datasets import (
    damage,
    make_fer,
    make_folder,
    make_kdef,
    make_rafdb,
    read_csv_rows,
    tree_bytes,
    tree_hash,
)

from lldif_bench.cli.main import main
from lldif_bench.datasets import ADAPTERS, open_dataset
from lldif_bench.datasets.build import build_lowlight, merge_shards
from lldif_bench.errors import UserError
from lldif_bench.imageio import read_image, write_image


def luma(img: np.ndarray) -> float:
    x = img.astype(float)
    return float(x.mean()) if x.shape[2] == 1 else float((x @ [0.2126, 0.7152, 0.0722]).mean())


def build(src, out, adapter="rafdb", workers=0, **kw):
    return build_lowlight(ADAPTERS.get(adapter)(src, **kw.pop("options", {})), out, workers=workers,
                          batch_size=kw.pop("batch_size", 8), device="cpu", **kw)


@pytest.fixture(scope="module")
def raf(tmp_path_factory):
    """A RAF-DB fixture with every bad-input case, built once (workers=2, the real pipeline)."""
    base = tmp_path_factory.mktemp("raf")
    root = make_rafdb(base / "src", original=False)
    aligned = root / "Image" / "aligned"
    damage(aligned / "train_00002_aligned.jpg", "zero")
    damage(aligned / "train_00004_aligned.jpg", "truncate")
    damage(aligned / "train_00006_aligned.jpg", "garbage")
    damage(aligned / "test_0002_aligned.jpg", "delete")
    label = root / "EmoLabel" / "list_patition_label.txt"
    label.write_bytes(label.read_bytes() + b"\ntrain_00015.jpg seven")
    before = tree_hash(root)
    summary = build(root, base / "out", workers=2, batch_size=4, command_line="test")
    return {"root": root, "out": base / "out", "summary": summary, "before": before, "base": base}


def test_bad_inputs_are_skipped_with_reasons(raf):
    rows = read_csv_rows(raf["out"] / "manifest.csv")
    status = {r["key"]: r["status"] for r in rows}
    assert status["Image/aligned/train_00002_aligned.jpg"] == "skipped:empty-file"
    assert status["Image/aligned/train_00004_aligned.jpg"] == "skipped:truncated"
    assert status["Image/aligned/train_00006_aligned.jpg"] == "skipped:undecodable"
    assert status["Image/aligned/test_0002_aligned.jpg"] == "skipped:missing-file"
    assert status["EmoLabel/list_patition_label.txt:22"] == "skipped:malformed-label"
    assert Counter(status.values())["ok"] == 17 and len(rows) == 22
    assert raf["summary"].skipped == {"empty-file": 1, "truncated": 1, "undecodable": 1, "missing-file": 1,
                                      "malformed-label": 1}
    assert tree_hash(raf["root"]) == raf["before"]  # the source is never written to


def test_outputs_layout_card_and_darkness(raf):
    out, root = raf["out"], raf["root"]
    assert (out / "EmoLabel" / "list_patition_label.txt").read_bytes() == \
        (root / "EmoLabel" / "list_patition_label.txt").read_bytes()
    assert not (out / ".lldif-work").exists()
    card = json.loads((out / "dataset.json").read_text())
    assert card["adapter"] == "rafdb" and card["preset"] == "paper" and card["seed"] == 0
    assert card["totals"] == {"train": 11, "test": 6}
    from degradations.kernels import OPS, cpu_kernels  # which kernel ran each degradation op
    kernels = card["degradation_kernels"]
    assert set(OPS) <= set(kernels) and kernels["device_type"] == card["settings"]["device_type"]
    if kernels["device_type"] == "cpu":
        assert kernels == {"device_type": "cpu", **cpu_kernels()}
    assert card["counts"]["train"] == {"surprise": 1, "fear": 1, "disgust": 1, "happiness": 2, "sadness": 2,
                                      "anger": 2, "neutral": 2}
    assert card["source_counts"]["test"] == dict.fromkeys(card["class_names"], 1) | {"fear": 0}
    rows = [r for r in read_csv_rows(out / "manifest.csv") if r["status"] == "ok"]
    assert all(r["param.exposure_ev"] and len(r["src_sha256"]) == 64 for r in rows)
    for r in rows:
        src, dst = read_image(root / r["source"]), read_image(out / r["output"])
        assert dst.shape == src.shape and luma(dst) < 0.7 * luma(src)
    ll = open_dataset(out)  # the copy reads back with the same adapter
    assert ll.name == "rafdb" and len(ll.records()) == 17


def test_rerun_is_a_no_op(raf):
    before = tree_bytes(raf["out"])
    summary = build(raf["root"], raf["out"], command_line="test")
    assert summary.written == 0 and summary.reused == 17 and summary.complete
    assert tree_bytes(raf["out"]) == before


def test_strict_fails_and_cli_reports_one_line(raf):
    with pytest.raises(UserError, match="--strict: 5 items were skipped"):
        build(raf["root"], raf["out"], strict=True, command_line="test")
    r = CliRunner().invoke(main, ["make-dataset", "rafdb", "--src", str(raf["root"].parent), "--out",
                                  str(raf["base"] / "cli"), "--workers", "0", "--strict", "--limit", "6"])
    assert r.exit_code != 0 and "--strict" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["make-dataset", "kdef", "--src", str(raf["root"]), "--out",
                                  str(raf["base"] / "cli2")])
    assert r.exit_code != 0 and "AF01AFS.JPG" in r.output and "Traceback" not in r.output


def test_refusals(raf):
    with pytest.raises(UserError, match="must not contain each other"):
        build(raf["root"], raf["root"] / "ll")
    with pytest.raises(UserError, match="different settings.*seed"):
        build(raf["root"], raf["out"], seed=1)
    foreign = raf["base"] / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("mine")
    with pytest.raises(UserError, match="not made by make-dataset"):
        build(raf["root"], foreign, overwrite=True)


def test_overwrite_replaces_a_build_with_other_settings(tmp_path):
    root = make_rafdb(tmp_path / "src", original=False)
    build(root, tmp_path / "out", limit=3)
    summary = build(root, tmp_path / "out", limit=4, seed=2, overwrite=True, image_format="png")
    assert summary.written == 4
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["seed"] == 2
    assert sorted(p.name for p in (tmp_path / "out" / "Image" / "aligned").iterdir()) == [
        "train_00001_aligned.png", "train_00002_aligned.png", "train_00003_aligned.png", "train_00004_aligned.png"]
    assert len(open_dataset(tmp_path / "out").records()) == 4  # the png copy reads back


def _dying_degrade(monkeypatch, after: int) -> None:
    """Make every process's (forked workers inherit it) 3rd degrade call raise KeyboardInterrupt."""
    real = __import__("degradations").degrade_batch_uint8
    calls = {"n": 0}

    def dying(*args, **kw):
        calls["n"] += 1
        if calls["n"] > after:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr("degradations.degrade_batch_uint8", dying)


def test_resume_after_interrupt_is_byte_identical(raf, tmp_path, monkeypatch):
    """Ctrl-C during the 3rd batch (in-process), run again: the result equals the uninterrupted build
    (other worker count and batch size too), and an output damaged on disk in between is redone."""
    out = tmp_path / "resumed"
    _dying_degrade(monkeypatch, after=2)
    with pytest.raises(KeyboardInterrupt):
        build(raf["root"], out, batch_size=5, command_line="test")
    assert not (out / "dataset.json").exists()
    done = sorted((out / "Image" / "aligned").glob("*.jpg"))
    assert len(done) == 7  # chunks of 5 items: 3 + 4 decodable images before the 3rd batch
    monkeypatch.undo()
    damage(done[0], "truncate")
    summary = build(raf["root"], out, batch_size=5, command_line="test")
    assert summary.reused == 6 and summary.written == 11
    assert tree_bytes(out) == tree_bytes(raf["out"])


def test_interrupt_inside_worker_processes_resumes_byte_identical(raf, tmp_path, monkeypatch):
    """A chunk failing inside a worker process stops the build with that error (no hang); chunks
    already running finish whole (no temp files left), and the rerun equals the uninterrupted build."""
    out = tmp_path / "resumed"
    _dying_degrade(monkeypatch, after=1)
    with pytest.raises(KeyboardInterrupt):
        build(raf["root"], out, workers=2, batch_size=3, command_line="test")
    journaled = len((out / ".lldif-work" / "journal.jsonl").read_text().splitlines())
    written = sorted((out / "Image" / "aligned").glob("*.jpg"))
    assert 2 <= len(written) < 17 and journaled >= 2
    assert not [p for p in out.rglob("*.tmp")]
    monkeypatch.undo()
    summary = build(raf["root"], out, workers=2, batch_size=4, command_line="test")
    assert summary.reused >= 1 and summary.reused + summary.written == 17
    assert tree_bytes(out) == tree_bytes(raf["out"])


@pytest.mark.parametrize("workers", [0, 2])
def test_a_full_disk_is_a_clear_error(raf, tmp_path, monkeypatch, workers):
    def full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("lldif_bench.datasets.pipeline.atomic_write_bytes", full)
    with pytest.raises(UserError, match="No space left on device; fix that and run the same command again"):
        build(raf["root"], tmp_path / "full", workers=workers, command_line="test")


@pytest.mark.parametrize("workers", [0, 2])
def test_staged_pipeline_writes_the_same_bytes(raf, tmp_path, workers):
    """The accelerator path (workers decode/encode, the main process degrades batches), run on the
    CPU, gives the chained build's bytes."""
    out = tmp_path / "staged"
    summary = build(raf["root"], out, workers=workers, batch_size=3, pipeline="staged", command_line="test")
    assert summary.written == 17
    assert tree_bytes(out) == tree_bytes(raf["out"])


@pytest.mark.parametrize("adapter", ["rafdb", "ferplus", "kdef", "folder"])
def test_build_job_pickles_for_spawn_workers(tmp_path, adapter):
    """Platforms without fork send the job to each worker by pickle: every adapter must survive it."""
    import pickle

    from degradations import load_preset
    from lldif_bench.datasets.pipeline import BuildJob, decode_item

    makers = {"rafdb": lambda: make_rafdb(tmp_path, original=False), "ferplus": lambda: make_fer(tmp_path),
              "kdef": lambda: make_kdef(tmp_path), "folder": lambda: make_folder(tmp_path)}
    ds = ADAPTERS.get(adapter)(makers[adapter]())
    record = ds.build_records()[0]
    job = BuildJob(dataset=ds, preset=load_preset("paper"), seed=0, out=tmp_path / "out")
    copy = pickle.loads(pickle.dumps(job))
    img, info = decode_item(copy, record)
    expected, expected_info = decode_item(job, record)
    assert img is not None and np.array_equal(img, expected) and info == expected_info


@pytest.mark.slow
def test_spawn_workers_write_the_same_bytes(raf, tmp_path, monkeypatch):
    """The start method used off Linux (spawn: workers re-import everything) builds the same copy."""
    monkeypatch.setattr("lldif_bench.datasets.pipeline.start_method", lambda: "spawn")
    out = tmp_path / "spawned"
    build(raf["root"], out, workers=2, batch_size=4, command_line="test")
    assert tree_bytes(out) == tree_bytes(raf["out"])


def test_damaged_outputs_of_a_finished_build_are_redone(raf, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(raf["out"], out)
    outputs = sorted((out / "Image" / "aligned").glob("*.jpg"))
    damage(outputs[0], "delete")
    damage(outputs[1], "truncate")
    summary = build(raf["root"], out, command_line="test")
    assert summary.written == 2 and summary.reused == 15
    assert tree_bytes(out) == tree_bytes(raf["out"])


def test_shards_and_merge_equal_a_full_run(raf, tmp_path):
    one = build(raf["root"], tmp_path / "shared", shard="1/2", command_line="test")
    assert not one.complete and (tmp_path / "shared" / "manifest.part-1-of-2.csv").is_file()
    with pytest.raises(UserError, match="2/2 are missing"):
        merge_shards(tmp_path / "shared")
    build(raf["root"], tmp_path / "other", shard="2/2", command_line="test")  # another machine's disk
    summary = merge_shards(tmp_path / "shared", [tmp_path / "other"], command_line="test")
    assert summary.complete and summary.ok == 17 and summary.skipped["missing-file"] == 1
    shared, full = tree_bytes(tmp_path / "shared"), tree_bytes(raf["out"])
    card_s, card_f = json.loads(shared.pop("dataset.json")), json.loads(full.pop("dataset.json"))
    assert shared == full  # every image, manifest.csv, label file and anomalies.json
    assert card_s["settings"].pop("shard_count") == 2 and card_f["settings"].pop("shard_count") == 1
    assert card_s == card_f
    with pytest.raises(UserError, match="I/N"):
        build(raf["root"], tmp_path / "bad", shard="3/2")


def test_ferplus_csv_copy(tmp_path):
    make_fer(tmp_path / "src", label_csv=True)
    lines = (tmp_path / "src" / "fer2013" / "fer2013.csv").read_text().splitlines()
    lines[4] = "3,1 2 3,Training"  # a malformed row stays in place, verbatim
    (tmp_path / "src" / "fer2013" / "fer2013.csv").write_text("\n".join(lines) + "\n")
    before = tree_hash(tmp_path / "src")
    summary = build(tmp_path / "src", tmp_path / "out", "ferplus", workers=2)
    assert summary.ok == 20 and summary.skipped == {"malformed-label": 1}
    out = tmp_path / "out"
    assert (out / "FERPlus" / "fer2013new.csv").read_bytes() == \
        (tmp_path / "src" / "FERPlus" / "fer2013new.csv").read_bytes()
    assert (out / "FERPlus" / "data" / "FER2013Train" / "label.csv").is_file()
    with open(out / "fer2013" / "fer2013.csv", newline="") as f:
        ll_rows = list(csv.reader(f))
    with open(tmp_path / "src" / "fer2013" / "fer2013.csv", newline="") as f:
        src_rows = list(csv.reader(f))
    assert ll_rows[0] == src_rows[0] and len(ll_rows) == len(src_rows)
    assert [r[2] for r in ll_rows] == [r[2] for r in src_rows] and ll_rows[4] == src_rows[4]
    src_mean = np.mean([float(np.mean(list(map(int, r[1].split())))) for r in src_rows[1:4]])
    ll_mean = np.mean([float(np.mean(list(map(int, r[1].split())))) for r in ll_rows[1:4]])
    assert ll_mean < 0.7 * src_mean
    card = json.loads((out / "dataset.json").read_text())
    assert card["totals"] == {"train": 6, "test": 14} and card["options"]["protocol"] == "ferplus_lldif"
    ll = open_dataset(out)
    assert len(ll.records()) == 20 and ll.load(ll.records()[0]).shape == (48, 48, 1)
    assert tree_hash(tmp_path / "src") == before
    again = build(tmp_path / "src", out, "ferplus")
    assert again.written == 0 and again.reused == 20


def test_kdef_copy_with_split_and_anomalies(tmp_path):
    root = make_kdef(tmp_path / "src")
    out = tmp_path / "out"
    build(root, out, "kdef", options={"protocol": "kdef_random80"}, batch_size=64)
    split = (out / "split_kdef_random80.txt").read_text().splitlines()
    assert len(split) == 140 and Counter(line.split()[1] for line in split) == {"train": 112, "test": 28}
    anomalies = json.loads((out / "anomalies.json").read_text())
    kinds = {(a["relpath"], a["kind"]) for a in anomalies}
    assert ("KDEF/AM02/AM02V.JPG", "renamed") in kinds and ("KDEF/BF01/BF01NEHL.JPG", "image") in kinds
    assert (out / "KDEF" / "AM02" / "AM02V.JPG").is_file() and not (out / "AKDEF").exists()
    ll = open_dataset(out)
    assert [(r.relpath, r.split) for r in ll.records()] == \
        [(r.relpath, r.split) for r in ADAPTERS.get("kdef")(root, protocol="kdef_random80").records()]
    card = json.loads((out / "dataset.json").read_text())
    assert card["totals"] == {"train": 112, "test": 28}


def test_kdef_exclude_anomalies_via_cli(tmp_path):
    """--exclude-anomalies leaves the chosen kinds out (recorded, --strict allows it); splits stay put."""
    root = make_kdef(tmp_path / "src")
    for folder in ("AF01", "BM02"):  # keep the two folders with anomalies: 70 items
        shutil.rmtree(root / "KDEF" / folder)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["make-dataset", "kdef", "--src", str(root), "--out", str(out), "--workers", "0",
                                  "--device", "cpu", "--strict", "--exclude-anomalies", "near-black,renamed"])
    assert r.exit_code == 0, r.output
    assert "68 images ok" in r.output and "2 excluded-anomaly" in r.output
    status = {row["key"]: row for row in read_csv_rows(out / "manifest.csv")}
    assert status["KDEF/BF01/BF01NEHL.JPG"]["status"] == "skipped:excluded-anomaly"
    assert "near-black" in status["KDEF/BF01/BF01NEHL.JPG"]["detail"]
    assert status["KDEF/AM02/AM02V.JPG"]["status"] == "skipped:excluded-anomaly"
    assert "renamed" in status["KDEF/AM02/AM02V.JPG"]["detail"]
    assert not (out / "KDEF" / "BF01" / "BF01NEHL.JPG").exists() and not (out / "KDEF" / "AM02" / "AM02V.JPG").exists()
    card = json.loads((out / "dataset.json").read_text())
    assert card["options"]["exclude_anomalies"] == ["renamed", "near-black"]
    assert card["dataset"]["exclude_anomalies"] == ["renamed", "near-black"]
    assert card["skipped"] == {"excluded-anomaly": 2} and sum(card["totals"].values()) == 68
    excluded = {a["relpath"] for a in json.loads((out / "anomalies.json").read_text()) if a["excluded"]}
    assert excluded == {"KDEF/BF01/BF01NEHL.JPG", "KDEF/AM02/AM02V.JPG"}
    kept = ADAPTERS.get("kdef")(root).records()  # the excluded items did not move anyone's split
    assert {r.relpath: r.split for r in open_dataset(out).records()} == \
        {r.relpath: r.split for r in kept if r.relpath not in excluded}
    with pytest.raises(UserError, match="unknown KDEF anomaly kind blurry"):
        ADAPTERS.get("kdef")(root, exclude_anomalies="near-black,blurry")


def test_folder_copy_via_cli_and_distribution_plot(tmp_path):
    root = make_folder(tmp_path / "src", per_class=(1, 1), png=True)
    grey = root / "test" / "sad" / "img_008.png"  # a grey image of another size, PNG named .jpg
    grey.unlink()
    write_image(root / "test" / "sad" / "grey.jpg", np.full((40, 30, 1), 150, np.uint8), fmt="png")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["--seed", "3", "make-dataset", "folder", "--src", str(root), "--out", str(out),
                                  "--workers", "0", "--preset", "paper", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "14 images ok" in r.output
    card = json.loads((out / "dataset.json").read_text())
    assert card["seed"] == 3 and card["totals"] == {"train": 7, "test": 7}
    assert "make-dataset folder" in card["command_line"]
    assert sorted(p.name for p in (out / "train" / "Happy").iterdir()) == ["img_000.png"]
    low = read_image(out / "test" / "sad" / "grey.jpg")  # decoded by content, kept grey, own batch
    assert low.shape == (40, 30, 1) and low.mean() < 0.7 * 150
    assert (out / "test" / "sad" / "grey.jpg").read_bytes()[:2] == b"\xff\xd8"  # written as its name says
    r = CliRunner().invoke(main, ["plot", "distribution", str(out), str(root), "--out", str(tmp_path / "f4.png")])
    assert r.exit_code == 0, r.output
    assert "out train: clear 7, low-light 7" in r.output and (tmp_path / "f4.png").stat().st_size > 1000


def test_unknown_landmark_backend_fails_before_any_work(tmp_path):
    root = make_rafdb(tmp_path / "src", original=False)
    with pytest.raises(UserError, match="unknown --landmarks backend 'nope'"):
        build(root, tmp_path / "out", landmarks="nope")
    assert not (tmp_path / "out").exists()


def test_realistic_preset_png_output_keeps_jpeg_artefacts(tmp_path):
    """A lossless copy built with `realistic` (jpeg_recompress) carries one JPEG round trip."""
    from degradations import degrade_batch_uint8, load_preset
    from degradations.files import encode_degraded
    from lldif_bench.datasets import open_dataset
    from lldif_bench.datasets.build import build_lowlight
    from lldif_bench.imageio import decode_image, read_image

    src = make_rafdb(tmp_path / "raf")
    out = tmp_path / "ll"
    build_lowlight(open_dataset(src), out, preset="realistic", seed=3, device="cpu", workers=0,
                   image_format="png", limit=2)
    preset = load_preset("realistic")
    ds = open_dataset(src)
    record = ds.records()[0]
    params = preset.sample(3, f"rafdb/{record.relpath}")
    assert params["jpeg_quality"] is not None
    img = ds.load(record)
    degraded = degrade_batch_uint8(torch.from_numpy(img).permute(2, 0, 1)[None], [params], preset=preset)
    degraded = degraded[0].permute(1, 2, 0).numpy()
    expected = decode_image(encode_degraded(degraded, "png", params["jpeg_quality"], recompress=True))
    written = read_image(out / ds.output_relpath(record, "png"))
    assert np.array_equal(written, expected)


def test_rafdb_mirror_layout_builds_via_cli_without_progress_bars(tmp_path, monkeypatch):
    import tqdm
    from fixtures_scaled import rafdb_folders

    bars = []
    real_tqdm = tqdm.tqdm
    monkeypatch.setattr(tqdm, "tqdm", lambda *a, **kw: bars.append(kw.get("disable")) or real_tqdm(*a, **kw))
    root = rafdb_folders(tmp_path / "src", 21)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["make-dataset", "rafdb", "--src", str(root), "--out", str(out), "--workers", "0",
                                  "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "21 images ok" in r.output and bars == [True]  # the one bar, switched off
    card = json.loads((out / "dataset.json").read_text())
    assert card["dataset"]["layout"] == "folders" and card["dataset"]["label_scheme"] == "rafdb"
    assert card["totals"] == {"train": 17, "test": 4} and "--no-progress" in card["command_line"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["test", "train"]
    copy = open_dataset(out)
    assert copy.name == "rafdb" and [r.label for r in copy.records()] == [r.label for r in
                                                                          ADAPTERS.get("rafdb")(root).records()]
    for command in (["make-dataset", "ferplus"], ["make-dataset", "synthetic"], ["landmarks"], ["degrade"],
                    ["demo"], ["merge-manifests"], ["run"]):
        assert "--no-progress" in CliRunner().invoke(main, [*command, "--help"]).output, command


def test_ferplus_csv_rows_share_one_work_file_resume_and_shards(tmp_path):
    """CSV rows go to slots of one work file (no file per row); a damaged slot is redone on resume,
    and shards built on separate disks merge into the same copy as a full run."""
    from lldif_bench.datasets.ferplus import ROWS_FILE

    src = make_fer(tmp_path / "src", label_csv=True)
    full = build(src, tmp_path / "full", "ferplus", workers=2)
    assert full.ok == 21 and not (tmp_path / "full" / ".lldif-work").exists()
    interrupted = tmp_path / "part"
    build(src, interrupted, "ferplus", shard="1/2")  # leaves the work file and a journal
    rows_file = interrupted / ROWS_FILE
    assert rows_file.is_file() and not list((interrupted / ".lldif-work").glob("rows/*"))
    data = bytearray(rows_file.read_bytes())
    data[0] ^= 0xFF  # damage row 0 (shard 1 holds rows 0, 2, 4, …)
    rows_file.write_bytes(bytes(data))
    again = build(src, interrupted, "ferplus", shard="1/2")
    assert again.written == 1 and again.reused == 10
    build(src, tmp_path / "other", "ferplus", shard="2/2")
    merged = merge_shards(interrupted, [tmp_path / "other"])
    assert merged.complete and merged.ok == 21
    assert (interrupted / "fer2013" / "fer2013.csv").read_bytes() == (tmp_path / "full" / "fer2013" /
                                                                       "fer2013.csv").read_bytes()
