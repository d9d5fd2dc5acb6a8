"""``lldif-bench degrade``, ``presets`` and ``plot histogram``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from degradations.numerics import np_linear_to_srgb, np_srgb_to_linear
from lldif_bench.cli.main import main
from lldif_bench.imageio import read_image


def make_inputs(root: Path) -> Path:
    src = root / "faces"
    (src / "train" / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        img = cv2.GaussianBlur((rng.random((40, 40, 3)) * 255).astype(np.uint8), (9, 9), 3)
        cv2.imwrite(str(src / "train" / f"{i}.png"), img)
    cv2.imwrite(str(src / "train" / "sub" / "face.jpg"), (rng.random((36, 44, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(src / "grey.png"), (rng.random((48, 48)) * 255).astype(np.uint8))
    (src / "train" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return src


def run(args):
    return CliRunner().invoke(main, args)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_degrade_folder_keeps_paths_skips_bad_images_and_is_reproducible(tmp_path):
    src = make_inputs(tmp_path)
    before = tree_bytes(src)
    r = run(["degrade", str(src), "--out", str(tmp_path / "a"), "--preset", "realistic", "--seed", "5"])
    assert r.exit_code == 0, r.output
    assert "wrote 7 image(s)" in r.output and "skipped 1 image(s): 1 not decodable" in r.output
    out = tree_bytes(tmp_path / "a")
    assert {"train/0.png", "train/sub/face.jpg", "grey.png", "degrade-manifest.jsonl"} <= set(out)
    assert read_image(tmp_path / "a" / "grey.png").shape == (48, 48, 1)
    assert tree_bytes(src) == before  # the source is never modified
    r2 = run(["degrade", str(src), "--out", str(tmp_path / "b"), "--preset", "realistic", "--seed", "5",
              "--batch-size", "2"])
    assert r2.exit_code == 0, r2.output
    again = tree_bytes(tmp_path / "b")
    images = [k for k in out if not k.startswith("degrade-")]
    assert all(out[k] == again[k] for k in images)  # byte-identical across runs and batch sizes
    assert out["degrade-manifest.jsonl"] == again["degrade-manifest.jsonl"]
    r3 = run(["degrade", str(src), "--out", str(tmp_path / "c"), "--preset", "realistic", "--seed", "6"])
    assert tree_bytes(tmp_path / "c")["train/0.png"] != out["train/0.png"]
    rows = [json.loads(line) for line in out["degrade-manifest.jsonl"].decode().splitlines()]
    assert len(rows) == 7 and all("exposure_ev" in row["params"] for row in rows)
    assert r3.exit_code == 0


def test_degrade_refuses_out_inside_input_and_bad_preset(tmp_path):
    src = make_inputs(tmp_path)
    r = run(["degrade", str(src), "--out", str(src / "dark")])
    assert r.exit_code != 0 and "inside the input folder" in r.output and "Traceback" not in r.output
    r = run(["degrade", str(src), "--out", str(tmp_path / "o"), "--preset", "nope"])
    assert r.exit_code != 0 and "unknown preset" in r.output and "Traceback" not in r.output
    r = run(["degrade", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "does not exist" in r.output
    (tmp_path / "a_file").write_text("x")
    r = run(["degrade", str(src), "--out", str(tmp_path / "a_file")])
    assert r.exit_code != 0 and "not a folder" in r.output and "Traceback" not in r.output


def test_degrade_image_format_conversion(tmp_path):
    src = make_inputs(tmp_path)
    r = run(["degrade", str(src / "train"), "--out", str(tmp_path / "o"), "--image-format", "jpg"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "0.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert (tmp_path / "o" / "sub" / "face.jpg").exists()


def test_done_when_flat_image_through_xmp_exposure_minus_one(tmp_path):
    src = tmp_path / "flat"
    src.mkdir()
    levels = [0, 10, 64, 128, 200, 255]
    for v in levels:
        cv2.imwrite(str(src / f"v{v}.png"), np.full((16, 16, 3), v, np.uint8))
    xmp = tmp_path / "minus1.xmp"
    xmp.write_text('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
                   '22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:crs="http://ns.adobe.com/'
                   'camera-raw-settings/1.0/" crs:Exposure2012="-1.00"/></rdf:RDF></x:xmpmeta>')
    r = run(["degrade", str(src), "--out", str(tmp_path / "o"), "--preset", str(xmp), "--image-format", "png"])
    assert r.exit_code == 0, r.output
    for v in levels:
        got = read_image(tmp_path / "o" / f"v{v}.png").astype(np.float64)
        expected = np_linear_to_srgb(0.5 * np_srgb_to_linear(v / 255.0)) * 255
        assert np.abs(got - expected).max() <= 1.0, v


def test_presets_command(tmp_path):
    r = run(["presets"])
    assert r.exit_code == 0 and "paper" in r.output and "realistic" in r.output
    r = run(["presets", "realistic"])
    assert r.exit_code == 0 and "noise_shot" in r.output and "loguniform" in r.output
    r = run(["presets", "nope"])
    assert r.exit_code != 0 and "unknown preset" in r.output


def test_plot_histogram(tmp_path):
    src = make_inputs(tmp_path)
    assert run(["degrade", str(src), "--out", str(tmp_path / "dark")]).exit_code == 0
    fig = tmp_path / "fig1.png"
    r = run(["plot", "histogram", str(src), str(tmp_path / "dark"), "--out", str(fig)])
    assert r.exit_code == 0, r.output
    assert fig.stat().st_size > 1000 and "median" in r.output and "mean" in r.output
    means = [float(line.split("mean")[1].split()[0]) for line in r.output.splitlines() if "luma" in line]
    assert means[0] < means[1]  # low-light first, darker than clear
    r = run(["plot", "histogram", str(tmp_path / "nothing"), str(src), "--out", str(fig)])
    assert r.exit_code != 0 and "does not exist" in r.output
