"""The tiny LLDif overfits 32 synthetic low-light faces to 100 % label-free accuracy in stage 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lldif_bench.models.lldif import build

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def synthetic_lowlight(n: int, size: int = 112, seed: int = 0) -> dict:
    """Rendered synthetic faces (with their landmarks), darkened (×0.2, γ 1.4) and ImageNet-normalised."""
    from lldif_bench.synthetic import render_face, sample_face_spec

    labels = [i % 7 for i in range(n)]
    faces = [render_face(sample_face_spec(y, seed, i), size) for i, y in enumerate(labels)]
    rgb = torch.from_numpy(np.stack([f.image for f in faces])).permute(0, 3, 1, 2).float() / 255
    dark = (rgb ** 1.4) * 0.2
    return {"image": (dark - MEAN) / STD, "label": torch.tensor(labels),
            "landmarks": torch.from_numpy(np.stack([f.landmarks for f in faces])).float(),
            "index": torch.arange(n), "epoch": 0}


def train_steps(model, batch, stage: str, steps: int, lr: float) -> None:
    model.set_stage(stage)
    model.train()
    opt = torch.optim.Adam(model.param_groups(lr)[0]["params"], lr=lr)
    for _ in range(steps):
        loss, _ = model.loss(model(batch), batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


@pytest.mark.slow
def test_tiny_overfits_32_images_in_stage2():
    torch.manual_seed(0)
    batch = synthetic_lowlight(32)
    model = build(7, num_train=32, pretrained=None, config="tiny")
    train_steps(model, batch, "0", 5, 1e-3)
    train_steps(model, batch, "1", 30, 1e-3)
    train_steps(model, batch, "2a", 20, 1e-3)
    accuracy = 0.0
    for _ in range(12):
        train_steps(model, batch, "2b", 10, 1e-3)
        model.eval()
        with torch.no_grad():
            pred = model.predict(batch["image"], batch["landmarks"]).argmax(1)  # label-free path
        accuracy = float((pred == batch["label"]).float().mean())
        if accuracy == 1.0:
            break
    assert accuracy == 1.0
