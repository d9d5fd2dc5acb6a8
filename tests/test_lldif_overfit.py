"""The tiny LLDif overfits 32 synthetic low-light faces to 100 % label-free accuracy in stage 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lldif_bench.device import flush_cpu_subnormals
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


def stage_trainer(model, batch: dict, stage: str, lr: float, cosine_steps: int | None = None):
    """One Adam optimizer over the stage's trainable parameters, kept across calls of the returned step(n);
    with ``cosine_steps``, the lr follows a cosine decay to 0 over that many steps."""
    model.set_stage(stage)
    opt = torch.optim.Adam([p for g in model.param_groups(lr) for p in g["params"]], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cosine_steps) if cosine_steps else None

    def steps(n: int) -> None:
        model.set_stage(stage)
        model.train()
        for _ in range(n):
            loss, _ = model.loss(model(batch), batch)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if sched is not None:
                sched.step()
    return steps


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


# The paper's Eq. 2 as printed (pure modulation, no Z norm, raw label prompts), the defaults before
# issue #17's stage-1 fix.
PRINTED_READING = {"dtnet": {"mod": "pure", "z_norm": False}, "pnet_s1": {"center_text": False}}


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    pytest.param(PRINTED_READING, id="printed-reading"),
    # Measured 2026-12-05: 53.1 % label-free after stage 2 (25.0 % with only the Z norm off): a
    # stage-1 LLformer that reads the label from Z alone leaves stage 2 nothing to start from (the
    # README's "LLDif's diffusion prior on the proxy"). Remove the mark when stage 2 is fixed.
    pytest.param({}, id="defaults", marks=pytest.mark.xfail(
        reason="issue #17: with the stage-1 fix's defaults stage 2 does not learn the image pathway", strict=False)),
])
def test_tiny_overfits_32_images_in_stage2(overrides):
    flush_cpu_subnormals()  # as the CLI and harness do (stage 2b stalls on subnormals otherwise)
    torch.manual_seed(0)
    batch = synthetic_lowlight(32)
    model = build(7, num_train=32, pretrained=None, config="tiny", **overrides)
    stage_trainer(model, batch, "0", 1e-3)(5)
    stage1 = stage_trainer(model, batch, "1", 1e-3)
    teacher = 0.0
    for _ in range(15):  # stage 1 until the (label-conditioned) teacher fits: stage 2 distils from it
        stage1(10)
        with torch.no_grad():
            teacher = accuracy(model(batch)["logits"], batch["label"])
        if teacher == 1.0:
            break
    assert teacher == 1.0, f"stage 1 (teacher) reached only {teacher:.1%}"
    stage_trainer(model, batch, "2a", 1e-3)(20)
    # 2b has no Z-matching loss (V4): when the teacher's LLformer read the label from Z alone, the LLformer
    # learns the image pathway here (measured at a constant lr 1e-3: 15.6% -> 97% in 100 steps, then
    # oscillating 72-97%), hence a cosine decay over the 200-step budget
    stage2b = stage_trainer(model, batch, "2b", 1e-3, cosine_steps=200)
    label_free = 0.0
    for _ in range(20):
        stage2b(10)
        model.eval()
        with torch.no_grad():
            label_free = accuracy(model.predict(batch["image"], batch["landmarks"]), batch["label"])
        if label_free == 1.0:
            break
    assert label_free == 1.0, f"stage 2 (label-free) reached only {label_free:.1%}"
