"""Landmark backends: face-alignment's offline error path and batching, auto's fallback, dlib on a
real face photo (skipped with a reason when the optional extra is not installed)."""

from __future__ import annotations

import importlib.util
import socket
import urllib.request

import numpy as np
import pytest
import torch

from lldif_bench.errors import UserError
from lldif_bench.landmarks import (
    build_backend,
    dlib_backend,
    face_alignment_backend,
    nme,
)
from lldif_bench.landmarks.face_alignment_backend import (
    FaceAlignmentBackend,
    required_files,
)

HAVE_DLIB = dlib_backend.availability()[0]
HAVE_SKIMAGE = importlib.util.find_spec("skimage") is not None


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach the network fails the test loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    import face_alignment.utils

    monkeypatch.setattr(face_alignment.utils, "download_url_to_file", refuse)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """torch hub pointed at an empty folder: no face-alignment weights on this 'machine'."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


@pytest.mark.parametrize("whole_crop", [False, True])
def test_face_alignment_without_weights_fails_with_names_urls_and_folder(no_network, empty_hub, whole_crop):
    with pytest.raises(UserError) as err:
        build_backend("face-alignment", whole_crop=whole_crop, device="cpu")
    message = str(err.value)
    assert "2DFAN4" in message and str(empty_hub) in message
    assert ("s3fd" in message) is (not whole_crop)        # whole-crop mode needs no detector weights
    with pytest.raises(UserError) as direct:
        FaceAlignmentBackend(device="cpu", whole_crop=whole_crop)
    for path, url in required_files(whole_crop):
        assert path.name in str(direct.value) and url in str(direct.value)
    assert not empty_hub.exists() or not any(empty_hub.iterdir())


def test_weight_names_follow_the_installed_package():
    from face_alignment import api
    from face_alignment.detection.sfd import sfd_detector

    names = [p.name for p, _ in required_files(False)]
    assert names == [api.models_urls["2DFAN-4"].rsplit("/", 1)[1], sfd_detector.models_urls["s3fd"].rsplit("/", 1)[1]]


def test_auto_falls_back_and_says_why(no_network, empty_hub, monkeypatch):
    if HAVE_DLIB:
        resolved = build_backend("auto", whole_crop=True, device="cpu")
        assert resolved.used == "dlib"
        assert any("skipped face-alignment" in n and "2DFAN4" in n for n in resolved.notes)
    monkeypatch.setattr(dlib_backend, "availability", lambda whole_crop=False: (False, "dlib is not installed"))
    from lldif_bench.landmarks import BACKENDS

    monkeypatch.setattr(BACKENDS.get("dlib"), "availability", dlib_backend.availability)
    with pytest.raises(UserError, match="no usable landmark backend(.|\n)*dlib is not installed"):
        build_backend("auto", device="cpu")


@pytest.mark.slow  # ~50 s on 2 shared cores: a 24 M-parameter FAN on CPU plus numba's first compile
def test_face_alignment_batched_path_matches_the_library(no_network, empty_hub):
    """With a (random-weight) FAN file in place, our batched FAN pass gives exactly the library's
    own per-image ``get_landmarks_from_image`` result for the same face box."""
    from face_alignment.models import FAN

    empty_hub.mkdir(parents=True)
    torch.manual_seed(0)
    fan_path = required_files(True)[0][0]
    torch.save(FAN(4).state_dict(), fan_path)
    backend = FaceAlignmentBackend(device="cpu", whole_crop=True, batch_size=2, flip_input=False,
                                  preprocess="none")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (90, 80, 3), dtype=np.uint8), rng.integers(0, 255, (48, 48, 1), dtype=np.uint8)]
    pts, conf, status = backend.detect(images, whole_crop=True)
    assert status == ["whole-crop", "whole-crop"] and pts.shape == (2, 68, 2)
    assert ((conf >= 0) & (conf <= 1)).all()
    for i, image in enumerate(images):
        rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
        box = face_alignment_backend.crop_box(*rgb.shape[:2], backend.inset)
        ref = backend.fa.get_landmarks_from_image(rgb, detected_faces=[box])
        np.testing.assert_allclose(pts[i], ref[0], atol=1e-3)


@pytest.fixture(scope="module")
def dlib_model():
    if not HAVE_DLIB:
        pytest.skip("dlib extra not installed (pip install 'lldif-bench[dlib]')")
    return build_backend("dlib", device="cpu").backend   # loads the 99 MB predictor once


@pytest.mark.skipif(not HAVE_SKIMAGE, reason="scikit-image (dev extra) provides the offline face photo")
def test_dlib_on_a_real_face_photo(dlib_model):
    import cv2
    import skimage.data

    photo = skimage.data.astronaut()                    # 512×512, Eileen Collins' face near (220, 120)
    backend = dlib_model
    pts, conf, status = backend.detect([photo], whole_crop=False)
    assert status == ["detected"] and 0.5 < conf[0] < 1
    p = pts[0]
    assert (p[:, 0] > 150).all() and (p[:, 0] < 300).all() and (p[:, 1] > 50).all() and (p[:, 1] < 200).all()
    assert p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0]    # eye corners left to right
    assert p[39, 1] < p[30, 1] < p[51, 1] < p[57, 1] < p[8, 1]  # eyes, nose tip, lips, chin top to bottom
    backend.upscale = 4                                 # sub-pixel output from an upscaled copy
    fine, _, _ = backend.detect([photo], whole_crop=False)
    backend.upscale = 1
    assert not np.allclose(fine, np.round(fine)) and nme(fine, pts)[0] < 0.02

    # A 100×100 face crop (RAF-DB-sized): whole-crop mode lands where the detector-based fit does.
    crop = cv2.resize(photo[40:220, 130:310], (100, 100), interpolation=cv2.INTER_AREA)
    detected, _, s1 = backend.detect([crop], whole_crop=False)
    backend.inset, default_inset = 0.2, backend.inset
    whole, wconf, s2 = backend.detect([crop[..., :1]], whole_crop=True)   # grey input is fine too
    backend.inset = default_inset
    assert s1 == ["detected"] and s2 == ["whole-crop"] and wconf[0] == 1.0
    assert nme(whole, detected)[0] < 0.05


def test_dlib_misses_a_faceless_image(dlib_model):
    pts, conf, status = dlib_model.detect([np.zeros((64, 64, 3), np.uint8)], whole_crop=False)
    assert status == ["missed"] and conf[0] == 0 and np.isnan(pts).all()
