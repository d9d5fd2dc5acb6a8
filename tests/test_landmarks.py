"""Landmarks: heatmaps, cache, fallback, registry, the synthetic backend and dataset extraction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lldif_bench.datasets.record import Record
from lldif_bench.errors import UserError
from lldif_bench.landmarks import (
    BACKENDS,
    GROUND_TRUTH_FILE,
    LandmarkTable,
    align_to_records,
    build_backend,
    extract_landmarks_for_dataset,
    load_landmarks,
    nme,
    read_landmarks,
    render_heatmaps,
    render_multiscale,
    save_landmarks,
)
from lldif_bench.landmarks.fallback import (
    canonical_mean_shape,
    canonical_shape_in_crop,
    fill_misses,
    read_dlib_initial_shape,
)
from lldif_bench.landmarks.geometry import crop_box, from_box
from lldif_bench.registry import RegistryError

# --------------------------------------------------------------------------- fixtures


def face_points(h: int, w: int, shift=(0.0, 0.0), seed: int = 0) -> np.ndarray:
    """A plausible 68-point face in an h×w crop: the canonical shape, jittered and shifted."""
    rng = np.random.default_rng(seed)
    pts = canonical_shape_in_crop(h, w) + rng.normal(0, 0.5, (68, 2)) + np.asarray(shift)
    return pts.astype(np.float32)


class TinyDataset:
    """The dataset API the extractor uses: root, records(), load(record), aligned_faces."""

    def __init__(self, root: Path, n: int = 5, size=(40, 32), aligned: bool = True, bad: tuple = ()) -> None:
        self.root = Path(root)
        self.aligned_faces = aligned
        self._records = [Record(f"Image/aligned/train_{i:05d}_aligned.jpg", i % 7, "train") for i in range(n)]
        self.size = size
        self.bad = set(bad)
        self.loaded: list[str] = []

    def records(self):
        return list(self._records)

    def load(self, record):
        self.loaded.append(record.relpath)
        if record.relpath in self.bad:
            raise FileNotFoundError(f"{record.relpath}: listed but missing")
        h, w = self.size
        return np.full((h, w, 1), 40, dtype=np.uint8)


def write_truth(root: Path, ds: TinyDataset, shuffled: bool = True) -> dict[str, np.ndarray]:
    """Ground truth as the synthetic generator writes it (rows deliberately not in records order)."""
    recs = ds.records()
    order = list(reversed(range(len(recs)))) if shuffled else list(range(len(recs)))
    truth = {recs[i].relpath: face_points(*ds.size, shift=(i * 0.25, 0), seed=i) for i in range(len(recs))}
    keys = [recs[i].relpath for i in order]
    root.mkdir(parents=True, exist_ok=True)
    save_landmarks(root / "landmarks.npz", LandmarkTable(
        keys, np.stack([truth[k] for k in keys]), np.ones(len(keys)), ["ground-truth"] * len(keys),
        np.tile(np.array(ds.size), (len(keys), 1))))
    return truth


# --------------------------------------------------------------------------- heatmaps


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_heatmap_peak_is_at_the_point(dtype):
    pts = torch.tensor([[[10.0, 20.0], [63.0, 0.0]], [[0.0, 0.0], [31.0, 47.0]]], dtype=dtype)
    hm = render_heatmaps(pts, (64, 64), (64, 64), sigma=1.5)
    assert hm.shape == (2, 2, 64, 64) and hm.dtype == dtype
    for b in range(2):
        for k in range(2):
            flat = int(hm[b, k].argmax())
            assert (flat % 64, flat // 64) == tuple(int(v) for v in pts[b, k])
            assert float(hm[b, k].max()) == pytest.approx(1.0)


def test_heatmap_rescales_points_and_matches_a_direct_gaussian():
    pts = torch.tensor([[[50.0, 25.0]]])                 # 112×112 image → 28×28 grid
    hm = render_heatmaps(pts, (112, 112), (28, 28), sigma=2.0)[0, 0]
    u, v = (50.0 + 0.5) * 28 / 112 - 0.5, (25.0 + 0.5) * 28 / 112 - 0.5
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    expected = torch.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 2.0 ** 2))
    torch.testing.assert_close(hm, expected)
    flat = int(hm.argmax())
    assert (flat % 28, flat // 28) == (12, 6)


def test_heatmap_non_square_and_nan_points():
    pts = torch.tensor([[[5.0, 2.0], [float("nan"), 3.0]]])
    hm = render_heatmaps(pts, (10, 20), (10, 20))
    assert hm.shape == (1, 2, 10, 20)
    assert int(hm[0, 0].argmax()) == 2 * 20 + 5
    assert float(hm[0, 1].abs().sum()) == 0.0


def test_heatmap_stays_on_device_and_keeps_grad():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pts = (torch.rand(3, 68, 2, device=device) * 100).requires_grad_(True)
    hm = render_heatmaps(pts, (100, 100), (14, 14))
    assert hm.device == pts.device
    hm.sum().backward()
    assert pts.grad is not None and torch.isfinite(pts.grad).all()


def test_multiscale_shapes_and_bad_input():
    pts = torch.rand(4, 68, 2) * 112
    maps = render_multiscale(pts, (112, 112))
    assert [tuple(m.shape) for m in maps] == [(4, 68, 28, 28), (4, 68, 14, 14), (4, 68, 7, 7)]
    assert all(float(m.amax()) > 0.3 for m in maps)
    with pytest.raises(ValueError, match="points must be"):
        render_heatmaps(torch.rand(68, 2), (10, 10), (5, 5))
    with pytest.raises(ValueError, match="sigma"):
        render_heatmaps(pts, (10, 10), (5, 5), sigma=0)


# --------------------------------------------------------------------------- NME, fallback, canonical shape


def test_nme_uses_outer_eye_corners():
    truth = np.zeros((1, 68, 2))
    truth[0, 45] = [10.0, 0.0]                           # inter-ocular distance 10
    pred = truth + np.array([0.0, 2.0])                  # every point 2 px off
    assert nme(pred, truth)[0] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        nme(pred[:, :10], truth[:, :10])


def test_canonical_shape_is_dlibs_initial_shape():
    shape = canonical_mean_shape()
    assert shape.shape == (68, 2)
    assert shape[36, 0] < shape[39, 0] < shape[42, 0] < shape[45, 0]     # eyes left to right
    assert shape[30, 1] > shape[39, 1] and shape[8, 1] > shape[57, 1] > shape[33, 1]  # nose, mouth, chin
    from lldif_bench.landmarks.dlib_backend import model_path

    path = model_path()
    if path is None:
        pytest.skip("dlib extra not installed: cannot re-derive the canonical shape from the model file")
    np.testing.assert_allclose(read_dlib_initial_shape(path), shape, atol=1e-7)


def test_fill_misses_uses_dataset_mean_normalised_to_each_crop():
    pts = np.stack([face_points(40, 40, seed=1), face_points(80, 40, seed=2),
                    np.full((68, 2), np.nan, np.float32), np.full((68, 2), np.nan, np.float32)])
    conf = np.array([0.9, 0.8, 0, 0], np.float32)
    status = ["detected", "whole-crop", "missed", "missed"]
    sizes = np.array([[40, 40], [80, 40], [40, 40], [20, 10]])
    used = fill_misses(pts, conf, status, sizes)
    assert used == {"fallback-mean-shape": 2}
    assert status[2:] == ["fallback-mean-shape"] * 2 and conf[2:].tolist() == [0, 0]
    unit = (pts[0] / [40, 40] + pts[1] / [40, 80]) / 2  # (x/W, y/H)
    np.testing.assert_allclose(pts[2], unit * [40, 40], rtol=1e-5)
    np.testing.assert_allclose(pts[3], unit * [10, 20], rtol=1e-5)


def test_fill_misses_without_any_detection_uses_canonical_shape():
    pts = np.full((2, 68, 2), np.nan, np.float32)
    status = ["missed", "missed"]
    used = fill_misses(pts, np.zeros(2, np.float32), status, np.array([[100, 100], [48, 48]]))
    assert used == {"fallback-canonical-shape": 2}
    np.testing.assert_allclose(pts[0], from_box(canonical_mean_shape(), crop_box(100, 100)), rtol=1e-5)
    assert np.isfinite(pts).all()


# --------------------------------------------------------------------------- cache


def test_cache_round_trip_and_alignment_to_records(tmp_path):
    keys = ["b.jpg", "a.jpg", "c.jpg"]
    table = LandmarkTable(keys, np.random.rand(3, 68, 2) * 50, [0.5, 1, 0], ["detected", "ground-truth",
                          "fallback-mean-shape"], [[50, 50]] * 3, {"backend": "dlib"})
    save_landmarks(tmp_path / "landmarks.npz", table)
    first = (tmp_path / "landmarks.npz").read_bytes()
    save_landmarks(tmp_path / "landmarks.npz", table)
    assert (tmp_path / "landmarks.npz").read_bytes() == first                  # byte-identical rewrites
    with np.load(tmp_path / "landmarks.npz", allow_pickle=False) as raw:   # the harness' plain-numpy read
        assert raw["points"].dtype == np.float32 and raw["points"].shape == (3, 68, 2)
        assert raw["relpath"].tolist() == keys and raw["status"].tolist()[0] == "detected"
    back = read_landmarks(tmp_path / "landmarks.npz")
    assert back.meta == {"backend": "dlib"}
    ordered = align_to_records(back, ["a.jpg", "c.jpg", "b.jpg"])
    np.testing.assert_array_equal(ordered.points[2], table.points[0])
    assert load_landmarks(tmp_path)["c.jpg"][2] == "fallback-mean-shape"
    with pytest.raises(UserError, match="lacks 1 of 2"):
        align_to_records(back, ["a.jpg", "zzz.jpg"])


def test_cache_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no landmark file"):
        read_landmarks(tmp_path / "landmarks.npz")
    (tmp_path / "landmarks.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable landmark file"):
        read_landmarks(tmp_path / "landmarks.npz")


# --------------------------------------------------------------------------- registry and backends


def test_registry_names_and_unknown_backend():
    assert {"auto", "face-alignment", "dlib", "synthetic"} <= set(BACKENDS.names())
    for entry in BACKENDS:
        ok, why = entry.obj.availability(True)
        assert isinstance(ok, bool) and why
    with pytest.raises(RegistryError, match="available: .*dlib"):
        build_backend("no-such-backend")


def test_synthetic_backend_needs_ground_truth(tmp_path):
    with pytest.raises(UserError, match="make-dataset synthetic"):
        build_backend("synthetic", search_dirs=[tmp_path])


# --------------------------------------------------------------------------- extraction


def test_synthetic_round_trip_through_lowlight_sibling(tmp_path):
    clear_ds = TinyDataset(tmp_path / "syn" / "clear")
    truth = write_truth(clear_ds.root, clear_ds)
    low = TinyDataset(tmp_path / "syn" / "lowlight")
    (low.root).mkdir(parents=True)
    (low.root / "dataset.json").write_text(json.dumps({"name": "synthetic", "counts": {"train": 5}}))
    summary = extract_landmarks_for_dataset(low.root, low, backend="synthetic")
    assert summary["backend"] == "synthetic" and summary["counts"] == {"ground-truth": 5}
    table = read_landmarks(low.root / "landmarks.npz")
    assert table.relpath == [r.relpath for r in low.records()]                   # records order
    for key, pts in truth.items():
        np.testing.assert_array_equal(load_landmarks(low.root)[key][0], pts)
    card = json.loads((low.root / "dataset.json").read_text())
    assert card["name"] == "synthetic" and card["landmarks"]["backend"] == "synthetic"
    assert card["landmarks"]["source"] == "lowlight"


def test_synthetic_rescales_to_a_resized_copy(tmp_path):
    clear_ds = TinyDataset(tmp_path / "clear", n=2)
    truth = write_truth(clear_ds.root, clear_ds)
    big = TinyDataset(tmp_path / "lowlight", n=2, size=(80, 64))
    big.root.mkdir()
    extract_landmarks_for_dataset(big.root, big, backend="synthetic")
    key = big.records()[0].relpath
    np.testing.assert_allclose(load_landmarks(big.root)[key][0], (truth[key] + 0.5) * 2 - 0.5, rtol=1e-6)


def test_detector_misses_fall_back_and_unreadable_rows_are_kept(tmp_path, monkeypatch):
    """A backend that misses every other face: misses are filled, flagged and counted."""
    class HalfBlind:
        name = "half-blind"

        def detect(self, images, whole_crop, keys=None):
            n = len(images)
            pts = np.full((n, 68, 2), np.nan, np.float32)
            status = ["missed"] * n
            for i in range(0, n, 2):
                h, w = images[i].shape[:2]
                pts[i], status[i] = face_points(h, w, seed=i), "whole-crop"
            return pts, np.where(np.arange(n) % 2 == 0, 0.9, 0.0).astype(np.float32), status

    from lldif_bench.landmarks import extract as extract_mod
    from lldif_bench.landmarks.backends import Resolved

    monkeypatch.setattr(extract_mod, "build_backend", lambda name, **kw: Resolved(HalfBlind(), name, "half-blind"))
    ds = TinyDataset(tmp_path / "d", n=6, bad=("Image/aligned/train_00005_aligned.jpg",))
    ds.root.mkdir()
    summary = extract_landmarks_for_dataset(ds.root, ds, backend="auto", batch_size=4)
    assert summary["counts"] == {"whole-crop": 3, "fallback-mean-shape": 2, "unreadable": 1}
    assert summary["detector_misses"] == 2 and summary["unreadable"] == 1
    assert summary["miss_rate"] == pytest.approx(2 / 5)
    table = read_landmarks(ds.root / "landmarks.npz")
    assert table.status[1] == "fallback-mean-shape" and table.confidence[1] == 0
    assert np.isfinite(table.points[:5]).all() and np.isnan(table.points[5]).all()
    with pytest.raises(UserError, match="--overwrite"):
        extract_landmarks_for_dataset(ds.root, ds, backend="auto", overwrite=False)


def test_clear_source_reads_the_clear_images_and_keeps_ground_truth(tmp_path, monkeypatch):
    clear_ds = TinyDataset(tmp_path / "clear", n=3)
    write_truth(clear_ds.root, clear_ds)
    low = TinyDataset(tmp_path / "lowlight", n=3)
    low.root.mkdir()
    with pytest.raises(UserError, match="--clear-dir"):
        extract_landmarks_for_dataset(low.root, low, backend="synthetic", source="clear")
    extract_landmarks_for_dataset(low.root, low, backend="synthetic", source="clear", clear_dataset=clear_ds)
    assert len(clear_ds.loaded) == 3 and not low.loaded
    assert read_landmarks(low.root / "landmarks.npz").meta["source"] == "clear"

    # A detector's points replacing the clear set's ground truth: the truth is kept beside it.
    class Constant:
        name = "constant"

        def detect(self, images, whole_crop, keys=None):
            n = len(images)
            return np.ones((n, 68, 2), np.float32), np.ones(n, np.float32), ["whole-crop"] * n

    from lldif_bench.landmarks import extract as extract_mod
    from lldif_bench.landmarks.backends import Resolved

    monkeypatch.setattr(extract_mod, "build_backend", lambda name, **kw: Resolved(Constant(), name, "constant"))
    extract_landmarks_for_dataset(clear_ds.root, clear_ds, backend="dlib")
    assert read_landmarks(clear_ds.root / GROUND_TRUTH_FILE).status == ["ground-truth"] * 3
    assert read_landmarks(clear_ds.root / "landmarks.npz").status == ["whole-crop"] * 3


def test_whole_crop_default_follows_the_adapter():
    from types import SimpleNamespace

    from lldif_bench.landmarks.extract import default_whole_crop

    assert default_whole_crop(SimpleNamespace(aligned_faces=True)) is True
    assert default_whole_crop(SimpleNamespace(aligned_faces=False, name="rafdb")) is False
    assert default_whole_crop(SimpleNamespace(name="rafdb", images="aligned")) is True
    assert default_whole_crop(SimpleNamespace(name="rafdb", images="original")) is False
    assert default_whole_crop(SimpleNamespace(name="ferplus")) is True
    assert default_whole_crop(SimpleNamespace(name="kdef")) is False


def test_cli_landmarks_command(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from lldif_bench.cli import landmarks as cli_landmarks
    from lldif_bench.cli.main import main

    clear_ds = TinyDataset(tmp_path / "syn" / "clear", n=4)
    write_truth(clear_ds.root, clear_ds)
    low = TinyDataset(tmp_path / "syn" / "lowlight", n=4)
    low.root.mkdir()
    monkeypatch.setattr(cli_landmarks, "open_dataset_dir", lambda path: low)
    runner = CliRunner()
    result = runner.invoke(main, ["landmarks", str(low.root), "--backend", "synthetic"])
    assert result.exit_code == 0, result.output
    assert "4 images, backend synthetic" in result.output and "ground-truth 4" in result.output
    again = runner.invoke(main, ["landmarks", str(low.root), "--backend", "synthetic"])
    assert again.exit_code != 0 and "--overwrite" in again.output and "Traceback" not in again.output
    unknown = runner.invoke(main, ["landmarks", str(low.root), "--backend", "nope", "--overwrite"])
    assert unknown.exit_code != 0 and "available: " in unknown.output


def test_preprocessing_stretches_dark_images():
    from lldif_bench.landmarks.preprocess import PREPROCESS

    rng = np.random.default_rng(0)
    dark = rng.integers(5, 40, (32, 32, 3), dtype=np.uint8)
    out = PREPROCESS.get("stretch")(dark)
    assert out.dtype == np.uint8 and out.shape == dark.shape
    assert np.percentile(out, 1) <= 3 and np.percentile(out, 99) >= 250
    order = np.argsort(dark.ravel(), kind="stable")
    assert (np.diff(out.ravel()[order].astype(int)) >= 0).all()        # monotone: no pixel order flips
    flat = np.full((8, 8, 3), 17, np.uint8)
    assert np.isfinite(PREPROCESS.get("stretch")(flat)).all()
    assert PREPROCESS.get("none")(dark) is dark
    assert PREPROCESS.get("equalize")(dark).shape == dark.shape
