"""The `cpu` preset (issue 17): grids that follow the input size, every part present, and the stage-1 fixes."""

from __future__ import annotations

import pytest
import torch

from lldif_bench.errors import UserError
from lldif_bench.models.lldif import build
from lldif_bench.models.lldif.config import grid_sizes, level1_side, resolve_config

K = 7


def batch(size: int, n: int = 2) -> dict:
    gen = torch.Generator().manual_seed(0)
    return {"image": torch.randn(n, 3, size, size, generator=gen), "label": torch.arange(n) % K,
            "landmarks": torch.rand(n, 68, 2, generator=gen) * size, "index": torch.arange(n), "epoch": 0}


def test_grids_follow_the_stem_stride():
    assert grid_sizes(resolve_config("base", overrides={"image_size": 112})) == (28, 14, 7)
    assert grid_sizes(resolve_config("base", overrides={"image_size": 224})) == (28, 14, 7)
    cpu = resolve_config("cpu", overrides={"image_size": 56})
    assert level1_side(cpu) == 28 and grid_sizes(cpu) == (14, 7, 4)
    with pytest.raises(UserError, match="stem_stride"):
        resolve_config("cpu", overrides={"image_size": 56, "dtnet": {"stem_stride": 4}})
    with pytest.raises(UserError, match="heatmap_size"):
        resolve_config("cpu", overrides={"image_size": 56, "landmark": {"heatmap_size": 56}})


def test_cpu_preset_keeps_every_part_and_runs_every_stage_at_56px():
    torch.manual_seed(0)
    model = build(K, num_train=4, pretrained=None, config="cpu", image_size=56, text={"kind": "hash", "dim": 32})
    for part in ("laclip", "pnet_s1", "student.pnet_s2", "student.denoiser", "student.llformer.dtnet",
                 "student.llformer.landmark_trunk", "student.llformer.dlnet", "student.llformer.fusion"):
        assert model.get_submodule(part) is not None
    assert model.student.llformer.heatmap_size == 28
    assert model.student.llformer.fusion.pos_embed.shape[1] == 1 + 49 + 49 + 16
    b = batch(56)
    for stage in ("0", "1", "2a", "2b"):
        model.set_stage(stage)
        model.train()
        loss, _ = model.loss(model(b), b)
        loss.backward()
        assert torch.isfinite(loss)
        model.zero_grad(set_to_none=True)
    model.eval()
    assert model.predict(b["image"], b["landmarks"]).shape == (2, K)


def test_centred_text_makes_the_class_inputs_differ():
    """pnet_s1.center_text removes the component all K label prompts share (MiniLM: cosine 0.69-0.85)."""
    torch.manual_seed(0)
    model = build(K, num_train=4, pretrained=None, config="tiny")
    labels = model.bank_labels
    centred = torch.nn.functional.normalize(labels - model.bank_label_mean, dim=-1)
    off = ~torch.eye(K, dtype=torch.bool)
    assert (centred @ centred.t())[off].mean() < (labels @ labels.t())[off].mean()
    assert torch.allclose((labels - model.bank_label_mean).sum(0), torch.zeros(labels.shape[1]), atol=1e-5)


def test_z_norm_makes_the_llformer_blind_to_the_scale_of_z():
    torch.manual_seed(0)
    model = build(K, num_train=4, pretrained=None, config="tiny").eval()
    b = batch(112)
    z = torch.randn(2, model.cfg.epd_dim)
    llf = model.student.llformer
    with torch.no_grad():
        assert torch.allclose(llf(b["image"], z, b["landmarks"]), llf(b["image"], 5 * z, b["landmarks"]), atol=1e-4)


def test_warmup_ce_trains_the_prior_through_the_frozen_llformer():
    torch.manual_seed(0)
    model = build(K, num_train=4, pretrained=None, config="tiny", stages={"warmup_ce_weight": 1.0})
    model.set_stage("2a")
    model.train()
    b = batch(112)
    out = model(b)
    assert out["logits"].shape == (2, K)
    loss, parts = model.loss(out, b)
    assert set(parts) == {"kl", "l1", "ce"}
    loss.backward()
    assert all(p.grad is None for p in model.student.llformer.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.student.pnet_s2.parameters())
    plain = build(K, num_train=4, pretrained=None, config="tiny")
    plain.set_stage("2a")
    plain.train()
    assert "logits" not in plain(b)  # the note's 2a: LLformer idle
