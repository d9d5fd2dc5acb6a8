"""The built-in synthetic FER generator: determinism, landmarks on features, RAF-DB layout, CLI."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lldif_bench.cli.make_synthetic import command
from lldif_bench.emotions import CANONICAL
from lldif_bench.errors import UserError
from lldif_bench.imageio import read_image
from lldif_bench.synthetic import (
    ActionUnits,
    class_counts,
    generate_synthetic,
    render_face,
    sample_face_spec,
)
from lldif_bench.synthetic.face_model import FRONTAL

NAME_RE = re.compile(r"^(train_\d{5}|test_\d{4})\.jpg [1-7]$")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files_and_other_seeds_differ(tmp_path):
    a = _files_of(tmp_path / "a", seed=3)
    b = _files_of(tmp_path / "b", seed=3)
    c = _files_of(tmp_path / "c", seed=4)
    assert a == b
    assert a.keys() == c.keys()
    differing = [k for k in a if a[k] != c[k]]
    assert len(differing) > 0.9 * len(a)


def _files_of(root: Path, seed: int) -> dict[str, bytes]:
    generate_synthetic(root, num_images=28, size=40, seed=seed, progress=False)
    return _files(root)


def test_raf_db_layout_labels_and_landmark_file(tmp_path):
    root = tmp_path / "clear"
    summary = generate_synthetic(root, num_images=60, size=48, seed=0, progress=False)
    raw = (root / "EmoLabel" / "list_patition_label.txt").read_bytes()
    assert not raw.endswith(b"\n") and b"\r" not in raw
    lines = raw.decode("ascii").split("\n")
    assert len(lines) == 60 and all(NAME_RE.match(line) for line in lines)
    names = [line.split(" ")[0] for line in lines]
    n_train = sum(n.startswith("train_") for n in names)
    assert names == [f"train_{i:05d}.jpg" for i in range(1, n_train + 1)] + \
        [f"test_{i:04d}.jpg" for i in range(1, 60 - n_train + 1)]   # all train, then all test
    assert n_train == summary["num_train"] and 0.7 < n_train / 60 < 0.85
    for split in ("train", "test"):
        labels = [int(line.split(" ")[1]) for line in lines if line.startswith(split)]
        counts = np.bincount(labels, minlength=8)[1:]
        assert (counts >= 2).all(), (split, counts)                      # all 7 classes, ≥ 2 each
        assert list(counts) == [summary[split][c] for c in CANONICAL]
    # happiness (label 4) is the most frequent class, as in RAF-DB
    assert np.bincount([int(line[-1]) for line in lines]).argmax() == 4

    images = sorted(p.name for p in (root / "Image" / "aligned").iterdir())
    assert images == sorted(n.replace(".jpg", "_aligned.jpg") for n in names)
    img = read_image(root / "Image" / "aligned" / "test_0001_aligned.jpg")
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8

    with np.load(root / "landmarks.npz", allow_pickle=False) as lm:
        assert set(lm.files) == {"relpath", "points", "confidence", "status"}
        assert list(lm["relpath"]) == [f"Image/aligned/{n[:-4]}_aligned.jpg" for n in names]
        assert lm["points"].shape == (60, 68, 2) and lm["points"].dtype == np.float32
        assert lm["confidence"].dtype == np.float32 and (lm["confidence"] == 1).all()
        assert set(lm["status"]) == {"ground-truth"}
        pts = lm["points"]
        assert (pts > -5).all() and (pts < 53).all()    # within (or just at the edge of) the image


@pytest.mark.parametrize("n", [28, 29, 100, 700, 2000, 15339])
def test_class_counts_follow_raf_db(n):
    counts = np.array(class_counts(n))
    assert counts.sum() == n and (counts >= 2).all()
    if n >= 100:   # tiny sets are dominated by the 2-test-images-per-class floor
        assert 0.18 < counts[:, 1].sum() / n < 0.25
    if n >= 2000:
        raf = np.array([1290, 281, 717, 4772, 1982, 705, 2524]) / 12271
        assert np.allclose(counts.sum(1) / n, raf, atol=0.01)


def test_too_few_images_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="at least|between"):
        generate_synthetic(tmp_path / "x", num_images=10, progress=False)


def test_identity_pose_scene_do_not_depend_on_the_label():
    specs = [sample_face_spec(label, seed=0, index=11) for label in range(7)]
    for s in specs[1:]:
        assert s.shape == specs[0].shape and s.pose == specs[0].pose
        assert s.look.hair_style == specs[0].look.hair_style
        assert np.array_equal(s.look.skin, specs[0].look.skin)
        assert s.look.feature_contrast == specs[0].look.feature_contrast
        assert s.scene.texture_seed == specs[0].scene.texture_seed and s.scene.ambient == specs[0].scene.ambient
    assert len({s.units for s in specs}) == 7


def _plain(spec, units: ActionUnits, feature_contrast: float = 1.0):
    """The same person, frontal, flat light, no noise or blur, no glasses or facial hair."""
    look = replace(spec.look, skin=np.array([200, 150, 120], np.float32), lip=np.array([150, 50, 60], np.float32),
                   brow=np.array([40, 30, 25], np.float32), glasses="none", facial_hair="none",
                   hair_style="bald", feature_contrast=feature_contrast)
    scene = replace(spec.scene, background="gradient", light_strength=0.0, ambient=1.0, face_contrast=0.0,
                    colour_cast=np.ones(3, np.float32), blur_sigma=0.0, noise_sigma=0.0)
    return replace(spec, look=look, scene=scene, pose=FRONTAL, units=units)


def test_smile_moves_mouth_corner_landmarks_up_and_out_and_jaw_drop_opens_mouth():
    spec = sample_face_spec(6, seed=0, index=5)
    rest = render_face(_plain(spec, ActionUnits()), 100).landmarks
    smile = render_face(_plain(spec, ActionUnits(lip_corner_pull=1.0)), 100).landmarks
    assert (smile[[48, 54], 1] < rest[[48, 54], 1] - 2.0).all()           # corners up by > 2 px
    assert smile[54, 0] - smile[48, 0] > rest[54, 0] - rest[48, 0] + 2.0  # and wider
    assert np.allclose(smile[:17], rest[:17]) and np.allclose(smile[36:48], rest[36:48])
    frown = render_face(_plain(spec, ActionUnits(lip_corner_depress=1.0)), 100).landmarks
    assert (frown[[48, 54], 1] > rest[[48, 54], 1] + 2.0).all()
    gape = render_face(_plain(spec, ActionUnits(jaw_drop=1.0)), 100).landmarks
    assert gape[66, 1] - gape[62, 1] > rest[66, 1] - rest[62, 1] + 5.0   # inner lips apart
    assert gape[8, 1] > rest[8, 1] + 5.0                                  # chin down
    brows = render_face(_plain(spec, ActionUnits(brow_inner_raise=1.0, brow_outer_raise=1.0)), 100).landmarks
    assert (brows[17:27, 1] < rest[17:27, 1] - 1.5).all()


@pytest.mark.parametrize("index", [1, 2, 3])
def test_landmarks_lie_on_the_drawn_features(index):
    spec = _plain(sample_face_spec(3, seed=0, index=index), ActionUnits(lip_corner_pull=0.6))
    face = render_face(spec, 200)
    img, lm = face.image.astype(float), face.landmarks

    def colour(p):
        x, y = np.rint(p).astype(int)
        return img[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(0)

    skin = np.array([200, 150, 120.0])
    lip = np.array([150, 50, 60.0])
    assert np.linalg.norm(colour(0.5 * (lm[2] + lm[31])) - skin) < 20          # a cheek is skin
    for upper, inner in ((50, 61), (51, 62), (52, 63)):                      # upper-lip body
        c = colour(0.5 * (lm[upper] + lm[inner]))
        assert np.linalg.norm(c - lip) < 0.5 * np.linalg.norm(c - skin) and np.linalg.norm(c - skin) > 60
    for eye in (range(36, 42), range(42, 48)):                              # eye interior is no skin
        assert np.linalg.norm(colour(lm[list(eye)].mean(0)) - skin) > 60
    for b in (19, 20, 23, 24):                                              # brows are dark
        assert colour(lm[b]).mean() < 0.6 * skin.mean()
    centre = lm[30]
    for j in range(3, 14):                                                  # jaw: skin inside only
        inward = lm[j] + 4 * (centre - lm[j]) / np.linalg.norm(centre - lm[j])
        outward = lm[j] - 4 * (centre - lm[j]) / np.linalg.norm(centre - lm[j])
        assert np.linalg.norm(colour(inward) - skin) < 25
        assert np.linalg.norm(colour(outward) - skin) > 25


def test_feature_contrast_scales_brow_and_lip_contrast_to_the_skin_only():
    spec = sample_face_spec(6, seed=0, index=2)
    faces = {c: render_face(_plain(spec, ActionUnits(), c), 200) for c in (1.0, 0.3)}
    lm = faces[1.0].landmarks
    assert np.array_equal(lm, faces[0.3].landmarks)                        # same geometry

    def colour(img, p):
        x, y = np.rint(p).astype(int)
        return img[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).astype(float).mean(0)

    for point in (lm[19], lm[24], 0.5 * (lm[51] + lm[62])):               # brows, upper lip
        skin = colour(faces[1.0].image, 0.5 * (lm[2] + lm[31]))           # a cheek
        full = np.linalg.norm(colour(faces[1.0].image, point) - skin)
        faint = np.linalg.norm(colour(faces[0.3].image, point) - skin)
        assert full > 50 and 0.2 * full < faint < 0.4 * full, (full, faint)


def test_cli_refuses_non_empty_out_unless_overwrite(tmp_path):
    out = tmp_path / "syn"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    args = ["--out", str(out), "--num-images", "28", "--size", "32", "--seed", "1", "--no-lowlight"]
    r = CliRunner().invoke(command, args)
    assert r.exit_code != 0 and "--overwrite" in r.output and r.exception is not None
    assert not (out / "clear").exists()
    r = CliRunner().invoke(command, args + ["--overwrite"])
    assert r.exit_code == 0, r.output
    assert (out / "clear" / "EmoLabel" / "list_patition_label.txt").is_file()
    assert (out / "keep.txt").read_text() == "user file"
    first = _files(out / "clear")
    r = CliRunner().invoke(command, args + ["--overwrite"])
    assert r.exit_code == 0 and _files(out / "clear") == first


def test_cli_writes_clear_and_lowlight_in_a_new_folder(tmp_path):
    out = tmp_path / "new"
    r = CliRunner().invoke(command, ["--out", str(out), "--num-images", "28", "--size", "32",
                                     "--workers", "0", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "happiness" in r.output and "28 images ok" in r.output
    clear_files = sorted((out / "clear" / "Image" / "aligned").iterdir())
    assert len(clear_files) == 28
    # the low-light copy keeps the layout (so the RAF-DB adapter reads it), is darker, and carries
    # the generator's ground-truth landmarks
    for f in clear_files[:5]:
        twin = out / "lowlight" / "Image" / "aligned" / f.name
        assert read_image(twin).mean() < read_image(f).mean() * 0.7
    assert (out / "lowlight" / "EmoLabel" / "list_patition_label.txt").read_bytes() == (
        out / "clear" / "EmoLabel" / "list_patition_label.txt").read_bytes()
    ll = np.load(out / "lowlight" / "landmarks.npz")
    gt = np.load(out / "clear" / "landmarks.npz")
    assert list(ll["relpath"]) == list(gt["relpath"]) and np.allclose(ll["points"], gt["points"])


def test_synthetic_pair_resumes_without_rewriting(tmp_path):
    from lldif_bench.synthetic.pair import make_synthetic_pair

    kw = {"num_images": 28, "size": 32, "seed": 2, "device": "cpu", "workers": 0, "progress": False}
    make_synthetic_pair(tmp_path, **kw)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jpg")}
    summary, built = make_synthetic_pair(tmp_path, **kw)
    assert summary["reused"] and built.written == 0 and built.ok == 28
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jpg")} == before
    r = CliRunner().invoke(command, ["--out", str(tmp_path / "n2"), "--num-images", "5"])
    assert r.exit_code != 0 and "num-images" in r.output


def test_synthetic_pair_regenerates_a_clear_set_of_another_generator_revision(tmp_path):
    import json

    from lldif_bench.synthetic.pair import make_synthetic_pair

    kw = {"num_images": 28, "size": 32, "seed": 2, "device": "cpu", "workers": 0, "progress": False}
    make_synthetic_pair(tmp_path, **kw)
    card = tmp_path / "clear" / "synthetic.json"
    meta = json.loads(card.read_text())
    card.write_text(json.dumps({**meta, "generator_revision": meta["generator_revision"] - 1}))
    stale = tmp_path / "lowlight" / "stale-marker.txt"
    stale.write_text("from the old renders")
    summary, built = make_synthetic_pair(tmp_path, **kw)
    assert not summary.get("reused") and built.written == 28  # both halves made again
    assert not stale.exists()
    assert json.loads(card.read_text())["generator_revision"] == meta["generator_revision"]
