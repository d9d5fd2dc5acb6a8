"""Synthetic generator revisions: revision 3 unchanged, revision 4's fine cues (label-only, landmarks
exact), the revision recorded in synthetic.json and selectable from the CLI."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from lldif_bench.cli.make_synthetic import command
from lldif_bench.emotions import CANONICAL
from lldif_bench.errors import UserError
from lldif_bench.synthetic import ActionUnits, generate_synthetic, render_face, sample_face_spec
from lldif_bench.synthetic.face_model import FRONTAL
from lldif_bench.synthetic.fine_cues import CUE_NAMES, FineCues
from lldif_bench.synthetic.revision4 import CUE_PROTOTYPES
from lldif_bench.synthetic.revisions import DEFAULT_REVISION, REVISIONS

# sha256 prefixes of image and landmark bytes at 100 px, rendered by main before revision 4 existed
REVISION3_RENDERS = {
    (0, 0, 0): ("232a549f7ad38b4a", "99b916e0429c6a24"),
    (2, 0, 7): ("f3f63c1b0c50f528", "4eda7388f384ff62"),
    (3, 1, 5): ("7c81c32789905421", "45971f4e6f4d07bc"),
    (5, 2, 11): ("f157ee9910444cfe", "f12cdfc8c2ffe21d"),
    (6, 0, 3): ("2e09217c5a2801ad", "b2614febe0c1653f"),
    (1, 5, 42): ("cd02555cc4e0f2a5", "52ebc44b4b61d808"),
}


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def test_revision_3_is_the_default_and_renders_exactly_as_before():
    assert DEFAULT_REVISION == 3
    for (label, seed, index), (image_sha, landmark_sha) in REVISION3_RENDERS.items():
        for spec in (sample_face_spec(label, seed, index), sample_face_spec(label, seed, index, revision=3)):
            face = render_face(spec, 100)
            assert (_sha(face.image), _sha(face.landmarks)) == (image_sha, landmark_sha), (label, seed, index)


def test_revision_4_keeps_person_pose_and_scene_and_changes_the_expression():
    for label in range(len(CANONICAL)):
        r3, r4 = sample_face_spec(label, 0, 9, revision=3), sample_face_spec(label, 0, 9, revision=4)
        assert r3.shape == r4.shape and r3.pose == r4.pose and r3.look.hair_style == r4.look.hair_style
        assert np.array_equal(r3.look.skin, r4.look.skin) and r3.scene.texture_seed == r4.scene.texture_seed
        assert r3.cues is None and isinstance(r4.cues, FineCues)
        assert not np.array_equal(render_face(r3, 64).image, render_face(r4, 64).image)
    a, b = (render_face(sample_face_spec(2, 4, 1, revision=4), 100) for _ in range(2))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.landmarks, b.landmarks)


def test_unknown_revision_is_a_clear_error(tmp_path):
    with pytest.raises(KeyError, match="available: 3, 4"):
        sample_face_spec(0, 0, 0, revision=2)
    with pytest.raises(UserError, match="revision"):
        generate_synthetic(tmp_path / "x", num_images=28, size=32, revision=9, progress=False)


def test_revision_4_label_moves_only_units_and_cues_and_person_strengths_are_label_free():
    specs = [sample_face_spec(label, seed=1, index=17, revision=4) for label in range(7)]
    for s in specs[1:]:
        assert s.shape == specs[0].shape and s.pose == specs[0].pose
        assert s.look.feature_contrast == specs[0].look.feature_contrast
        assert s.scene.ambient == specs[0].scene.ambient and s.scene.light_angle == specs[0].scene.light_angle
    # a cue that neither class uses shows the same resting crease (person strength x resting) in both
    for a, b in ((5, 6), (2, 4), (0, 3)):
        unused = [k for k in CUE_NAMES if k not in CUE_PROTOTYPES[CANONICAL[a]] and k not in CUE_PROTOTYPES[CANONICAL[b]]]
        assert unused
        for k in unused:
            assert getattr(specs[a].cues, k) == getattr(specs[b].cues, k), (a, b, k)
    # and a class's own cues are stronger than another class's resting creases, on average over people
    for label, name in ((5, "glabella"), (2, "nose_wrinkle"), (4, "chin_dimple"), (3, "crows_feet")):
        own = np.mean([getattr(sample_face_spec(label, 0, i, revision=4).cues, name) for i in range(40)])
        rest = np.mean([getattr(sample_face_spec(6, 0, i, revision=4).cues, name) for i in range(40)])
        assert own > 5 * rest, (name, own, rest)


def test_revision_4_negative_expressions_share_their_large_shapes():
    """Fear, disgust, sadness and anger draw their brow and mouth shapes from one pool: the mouth
    corners' drop is distributed alike, whatever the class."""
    corner = {label: [sample_face_spec(label, 0, i, revision=4).units.lip_corner_depress for i in range(60)]
              for label in (1, 2, 4, 5)}
    assert len({tuple(np.round(v, 9)) for v in corner.values()}) == 1  # same draws, same base variant


def _plain(spec):
    look = replace(spec.look, skin=np.array([200, 150, 120], np.float32), lip=np.array([150, 50, 60], np.float32),
                   brow=np.array([40, 30, 25], np.float32), glasses="none", facial_hair="none", hair_style="bald")
    scene = replace(spec.scene, background="gradient", light_strength=0.0, ambient=1.0, face_contrast=0.0,
                    colour_cast=np.ones(3, np.float32), blur_sigma=0.0, noise_sigma=0.0)
    return replace(spec, look=look, scene=scene, pose=FRONTAL)


@pytest.mark.parametrize("label", range(7))
def test_revision_4_creases_move_no_landmark(label):
    spec = sample_face_spec(label, 0, 3, revision=4)
    strong = replace(spec, cues=FineCues(**{k: 1.5 for k in CUE_NAMES}))
    without = replace(spec, cues=FineCues())
    faces = [render_face(s, 100) for s in (spec, strong, without)]
    for f in faces[1:]:
        assert np.array_equal(f.landmarks, faces[0].landmarks)
    # the same landmarks as revision 3 draws for these action units (geometry only from the units)
    assert np.array_equal(render_face(replace(spec, cues=None), 100).landmarks, faces[0].landmarks)


@pytest.mark.parametrize("cue", CUE_NAMES)
def test_each_fine_cue_is_a_faint_thin_crease_at_100px(cue):
    spec = _plain(replace(sample_face_spec(6, 0, 2, revision=4), units=ActionUnits()))
    base = render_face(replace(spec, cues=FineCues()), 100).image.astype(float).mean(-1)
    creased = render_face(replace(spec, cues=FineCues(**{cue: 1.0})), 100).image.astype(float).mean(-1)
    diff = base - creased
    assert diff.max() > 8                      # visible on a clear render (grey levels)
    assert diff.max() < 0.3 * base.mean()      # low contrast: no crease is a dark feature
    assert diff.min() > -1                     # creases only darken
    assert 5 <= (diff > 3).sum() <= 200        # a few thin lines, not a patch


def test_synthetic_json_records_the_revision_and_a_pair_of_another_revision_is_regenerated(tmp_path):
    from lldif_bench.synthetic.pair import make_synthetic_pair

    kw = {"num_images": 28, "size": 32, "seed": 2, "device": "cpu", "workers": 0, "progress": False}
    make_synthetic_pair(tmp_path, lowlight=False, **kw)
    card = tmp_path / "clear" / "synthetic.json"
    assert json.loads(card.read_text())["generator_revision"] == 3
    rev3 = (tmp_path / "clear" / "Image" / "aligned" / "train_00001_aligned.jpg").read_bytes()
    summary, _ = make_synthetic_pair(tmp_path, lowlight=False, revision=4, **kw)
    assert not summary.get("reused") and json.loads(card.read_text())["generator_revision"] == 4
    assert (tmp_path / "clear" / "Image" / "aligned" / "train_00001_aligned.jpg").read_bytes() != rev3
    summary, _ = make_synthetic_pair(tmp_path, lowlight=False, revision=4, **kw)
    assert summary["reused"]
    make_synthetic_pair(tmp_path, lowlight=False, revision=3, **kw)  # asked for again: the same bytes
    assert (tmp_path / "clear" / "Image" / "aligned" / "train_00001_aligned.jpg").read_bytes() == rev3


def test_cli_revision_option(tmp_path):
    out = tmp_path / "r4"
    r = CliRunner().invoke(command, ["--out", str(out), "--num-images", "28", "--size", "32", "--no-lowlight",
                                     "--revision", "4"])
    assert r.exit_code == 0, r.output
    assert "generator revision 4" in r.output
    assert json.loads((out / "clear" / "synthetic.json").read_text())["generator_revision"] == 4
    r = CliRunner().invoke(command, ["--out", str(tmp_path / "bad"), "--num-images", "28", "--revision", "2"])
    assert r.exit_code != 0 and "--revision" in r.output
    assert set(REVISIONS.names()) == {"3", "4"}


def test_lowlight_copy_is_degraded_at_the_rendered_size_in_8_bits(tmp_path):
    """Issue #20 item 2: the darkening, noise, 8-bit quantisation and JPEG act on the rendered image,
    before any resize for training (the packed cache resizes later)."""
    from lldif_bench.imageio import read_image
    from lldif_bench.synthetic.pair import make_synthetic_pair

    make_synthetic_pair(tmp_path, num_images=28, size=40, seed=1, revision=4, preset="realistic", device="cpu",
                        workers=0, progress=False)
    for f in sorted((tmp_path / "clear" / "Image" / "aligned").iterdir())[:4]:
        clear, dark = read_image(f), read_image(tmp_path / "lowlight" / "Image" / "aligned" / f.name)
        assert clear.shape == dark.shape == (40, 40, 3) and dark.dtype == np.uint8
        assert dark.mean() < 0.7 * clear.mean()
