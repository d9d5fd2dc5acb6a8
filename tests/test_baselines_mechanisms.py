"""Each baseline's distinctive mechanism, exercised on crafted inputs (not just "it trains")."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from baselines import arm, dacl, dan, eac, manet, posterpp, rul, scn
from baselines.backbone import TrunkOutput
from lldif_bench.errors import UserError
from lldif_bench.methods import METHODS  # filled by importing ``baselines`` above


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(name: str, num_train: int = 8, image_size: int = 32, **config):
    torch.manual_seed(0)
    return METHODS.get(name)(3, num_train=num_train, pretrained=None, image_size=image_size, **config)


# --- SCN -----------------------------------------------------------------------------------------

def test_scn_relabel_rule_uses_the_margin():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.1, 0.1, 0.8]])
    mask, new = scn.relabel_decisions(probs, torch.tensor([1, 1, 2]), margin=0.2)
    assert mask.tolist() == [True, False, False] and int(new[0]) == 0


def test_scn_rank_regularisation():
    assert float(scn.rank_regularisation(torch.tensor([0.9, 0.9, 0.1, 0.1]), 0.5, 0.07)) == 0.0
    assert float(scn.rank_regularisation(torch.full((4,), 0.5), 0.5, 0.07)) == pytest.approx(0.07)
    assert scn.low_importance_mask(torch.tensor([0.9, 0.1, 0.8, 0.2]), 0.5).tolist() == [False, True, False, True]


def scn_step(model, epoch: int):
    # sample at index 5: low importance, confident in class 0 but labelled 2 → relabel to 0
    # sample at index 3: low importance, margin 0.1 < 0.2 → keep; index 1/7: high importance
    logits = torch.log(torch.tensor([[0.05, 0.05, 0.9], [0.8, 0.1, 0.1], [0.45, 0.2, 0.35], [0.9, 0.05, 0.05]]))
    outputs = {"logits": logits, "alpha": torch.tensor([0.9, 0.2, 0.3, 0.95])}
    batch = {"label": torch.tensor([2, 2, 2, 2]), "index": torch.tensor([1, 5, 3, 7]), "epoch": epoch}
    model.train()
    model.loss(outputs, batch)
    return batch


def test_scn_relabels_low_importance_samples_past_the_margin_only():
    model = build("scn")
    scn_step(model, epoch=9)                       # before relabel_epoch: nothing happens
    assert (model.relabels == -1).all()
    batch = scn_step(model, epoch=10)
    assert int(model.relabels[5]) == 0             # margin 0.8 − 0.1 > 0.2, low group
    assert int(model.relabels[3]) == -1            # margin 0.45 − 0.35 = 0.1 ≤ 0.2
    assert int(model.relabels[7]) == -1            # high-importance group (paper rule)
    assert model.current_labels(batch).tolist() == [2, 0, 2, 2]
    code_rule = build("scn", relabel_scope="all")
    scn_step(code_rule, epoch=10)
    assert int(code_rule.relabels[7]) == 0 and int(code_rule.relabels[5]) == 0


def test_scn_logits_are_importance_scaled():
    model = build("scn").eval()
    with torch.no_grad():
        out = model.embed(torch.randn(2, 3, 32, 32))
        raw = model.fc(out["features"])
    torch.testing.assert_close(out["logits"], out["alpha"][:, None] * raw)


# --- RUL -----------------------------------------------------------------------------------------

def test_rul_mixup_weights_follow_relative_uncertainty():
    mu = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    log_var = torch.log(torch.tensor([[1.0, 1.0], [3.0, 3.0], [2.0, 2.0]]))
    mixed, w_self, w_partner = rul.uncertainty_mixup(mu, log_var, torch.tensor([1, 0, 2]))
    assert w_self.flatten().tolist() == pytest.approx([0.25, 0.75, 0.5])
    torch.testing.assert_close(w_self + w_partner, torch.ones(3, 1))
    torch.testing.assert_close(mixed[0], torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(mixed[2], mu[2])     # paired with itself: unchanged


def test_rul_trains_on_mixed_features_and_predicts_from_mu():
    model = build("rul")
    batch = {"image": torch.randn(4, 3, 32, 32), "label": torch.tensor([0, 1, 2, 0]), "index": torch.arange(4)}
    out = model.train()(batch)
    loss, logs = model.loss(out, batch)
    y, partner = batch["label"], out["partner"]
    expected = 0.5 * F.cross_entropy(out["mixed_logits"], y) + 0.5 * F.cross_entropy(out["mixed_logits"], y[partner])
    torch.testing.assert_close(loss, expected)
    assert "uncertainty_mean" in logs
    model.eval()
    with torch.no_grad():
        out = model(batch)
        assert "mixed_logits" not in out
        torch.testing.assert_close(model.predict(batch["image"]), model.fc(out["features"]))


# --- EAC -----------------------------------------------------------------------------------------

def test_eac_consistency_is_zero_for_mirrored_maps_only():
    cam = torch.randn(2, 3, 5, 5)
    assert float(eac.flip_consistency_loss(cam, cam.flip(-1))) == 0.0
    assert float(eac.flip_consistency_loss(cam, cam)) > 0.0


class PointwiseTrunk(torch.nn.Module):
    """A flip-equivariant stand-in trunk: a 1×1 conv (per-pixel, so flip(f(x)) = f(flip(x)))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 512, 1)

    def forward(self, x):
        fmap = torch.relu(self.conv(F.avg_pool2d(x, 4)))
        return TrunkOutput((fmap,), fmap.mean(dim=(2, 3)))


def test_eac_loss_is_zero_for_a_flip_equivariant_model_and_not_otherwise():
    model = build("eac")
    batch = {"image": torch.randn(2, 3, 32, 32), "label": torch.tensor([0, 1]), "index": torch.arange(2)}
    model.train()
    _, logs = model.loss(model(batch), batch)
    assert logs["flip_consistency"] > 0                    # a real ResNet is not flip-equivariant
    model.trunk = PointwiseTrunk()
    out = model(batch)
    _, logs = model.loss(out, batch)
    assert logs["flip_consistency"] == pytest.approx(0.0, abs=1e-10)
    assert out["cam"].shape == (2, 3, 8, 8)
    expected = torch.einsum("bchw,kc->bkhw", model.trunk(batch["image"]).last, model.fc.weight)
    torch.testing.assert_close(out["cam"], expected)
    assert not out["cam"].requires_grad or out["cam"].grad_fn is not None
    model.fc.weight.grad = None                                # CAMs use detached classifier weights
    eac.flip_consistency_loss(out["cam"], out["cam_flipped"] + 1).backward()
    assert model.fc.weight.grad is None


# --- DAN -----------------------------------------------------------------------------------------

def test_dan_affinity_loss_on_crafted_features():
    centres = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    labels = torch.tensor([0, 1, 2])
    assert float(dan.affinity_loss(centres.clone(), labels, centres)) == pytest.approx(0.0, abs=1e-9)
    total_var = float(centres.var(dim=0).sum())
    shifted = centres + torch.tensor([1.0, 1.0])                 # every sample √2 from its centre
    assert float(dan.affinity_loss(shifted, labels, centres)) == pytest.approx(2.0 / total_var)


def test_dan_partition_loss_rewards_diverse_heads():
    heads = torch.tensor([[[0.0, 0.0], [2.0, 2.0]]])             # unbiased variance 2 across 2 heads
    assert float(dan.partition_loss(heads)) == pytest.approx(math.log(2.0))
    assert float(dan.partition_loss(3 * heads)) < float(dan.partition_loss(heads))
    assert float(dan.partition_loss(heads[:, :1])) == 0.0


def test_dan_heads_and_fusion_shapes():
    model = build("dan").eval()
    with torch.no_grad():
        out = model.embed(torch.randn(2, 3, 32, 32))
    assert out["heads"].shape == (2, 4, 512)
    torch.testing.assert_close(out["heads"].exp().sum(dim=1), torch.ones(2, 512))  # log-softmax over heads
    torch.testing.assert_close(out["features"], out["heads"].sum(dim=1))



def test_dan_from_scratch_uses_relative_spatial_maps_and_no_logit_batchnorm():
    """Issue #18: from scratch, where the layer4 map has extent (> 32 px), each head's spatial map is
    divided by its per-image mean and the logits skip the BatchNorm; the options restore the official
    head (what a loaded trunk gets), and a 1×1 map (≤ 32 px) keeps the official head by default."""
    model = build("dan", image_size=48)
    assert model.spatial_norm and not model.logit_bn and isinstance(model.bn, torch.nn.Identity)
    x = torch.rand(2, 512, 2, 2) + 0.1
    with torch.no_grad():
        ratio = model.heads[0].spatial(x) / x                      # the map x is multiplied by
    torch.testing.assert_close(ratio.mean(dim=(2, 3)), torch.ones(2, 512))
    official = build("dan", spatial_norm=False, logit_bn=True)
    assert isinstance(official.bn, torch.nn.BatchNorm1d)
    with torch.no_grad():
        raw = official.heads[0].spatial(x) / x
    assert float(raw.mean()) > 10                                   # the raw channel sum (~0.4 × 512)
    at_32 = build("dan")                                            # image_size 32: a 1×1 layer4 map
    assert not at_32.spatial_norm and at_32.logit_bn and isinstance(at_32.bn, torch.nn.BatchNorm1d)
    forced = build("dan", spatial_norm=True)
    point = torch.rand(2, 512, 1, 1) + 0.1                          # a forced 1×1 relative map: channel mean
    with torch.no_grad():
        torch.testing.assert_close(forced.heads[0].spatial(point) * 512, official.heads[0].spatial(point))

# --- DACL ----------------------------------------------------------------------------------------

def test_dacl_sparse_centre_loss_weights_each_dimension():
    x = torch.tensor([[1.0, 3.0]])
    c = torch.zeros(1, 2)
    y = torch.tensor([0])
    assert float(dacl.sparse_centre_loss(x, torch.tensor([[1.0, 1.0]]), y, c)) == pytest.approx(5.0)
    assert float(dacl.sparse_centre_loss(x, torch.tensor([[1.0, 0.0]]), y, c)) == pytest.approx(0.5)
    grad = dacl.centre_update(torch.tensor([[2.0, 2.0], [4.0, 4.0]]), torch.ones(2, 2), torch.tensor([0, 0]),
                              torch.zeros(1, 2))
    torch.testing.assert_close(grad, torch.tensor([[-2.0, -2.0]]))    # −(2+4)/(1+2)


def test_dacl_attention_is_per_dimension_and_centres_move_in_training_only():
    model = build("dacl")
    batch = {"image": torch.randn(4, 3, 32, 32), "label": torch.tensor([0, 1, 2, 0]), "index": torch.arange(4)}
    model.train()
    out = model(batch)
    assert out["attention"].shape == (4, 512)
    assert ((out["attention"] > 0) & (out["attention"] < 1)).all()
    before = model.centres.clone()
    distance = (out["features"].detach() - before[batch["label"]]).norm()
    model.loss(out, batch)
    assert (out["features"].detach() - model.centres[batch["label"]]).norm() < distance
    assert not any(p is model.centres for p in model.parameters())      # own update, not the optimiser
    model.eval()
    frozen = model.centres.clone()
    with torch.no_grad():
        model.loss(model(batch), batch)
    assert torch.equal(model.centres, frozen)


# --- MA-Net --------------------------------------------------------------------------------------

def test_manet_local_branches_see_only_their_quadrant():
    model = build("manet").eval()
    x = torch.randn(1, 128, 8, 8)
    torch.testing.assert_close(manet.assemble(manet.quadrants(x)), x)
    with torch.no_grad():
        outs = [b(q) for b, q in zip(model.local_branches, manet.quadrants(x))]
        x2 = x.clone()
        x2[..., :4, :4] += 1.0
        outs2 = [b(q) for b, q in zip(model.local_branches, manet.quadrants(x2))]
    assert not torch.allclose(outs[0], outs2[0])
    for a, b in zip(outs[1:], outs2[1:]):
        torch.testing.assert_close(a, b)
    assert outs[0].shape == (1, 512, 2, 2)


def test_manet_fuses_branches_with_beta():
    model = build("manet").eval()
    batch = {"image": torch.randn(2, 3, 32, 32), "label": torch.tensor([0, 2]), "index": torch.arange(2)}
    with torch.no_grad():
        out = model(batch)
        loss, logs = model.loss(out, batch)
    torch.testing.assert_close(out["logits"], 0.6 * out["logits_local"] + 0.4 * out["logits_global"])
    assert float(loss) == pytest.approx(0.6 * logs["ce_local"] + 0.4 * logs["ce_global"], rel=1e-5)
    assert out["features"].shape == (2, 1024)
    block = manet.MultiScaleBlock(64, 128, 2).eval()
    assert block(torch.randn(1, 64, 8, 8)).shape == (1, 128, 4, 4)


# --- ARM -----------------------------------------------------------------------------------------

def test_arm_amend_module_shapes_and_batch_sharing():
    module = arm.AmendRepresentation().eval()
    assert module.de_albino.weight.shape == (1, 1, 32, 32)              # one shared kernel
    x = torch.randn(3, 512, 7, 7)
    with torch.no_grad():
        out = module(x)
        assert out.shape == (3, 11, 11)
        other = module(torch.cat([x[:1], torch.randn(2, 512, 7, 7)]))
    assert not torch.allclose(out[0], other[0])                           # depends on the batch


def test_arm_running_batch_term_makes_eval_batch_independent():
    module = arm.AmendRepresentation(batch_term="running")
    module.train()
    module(torch.randn(4, 512, 7, 7))
    assert module.running_batch_term.abs().sum() > 0
    module.eval()
    x = torch.randn(3, 512, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(module(x)[:1], module(x[:1]))


# --- POSTER++ ------------------------------------------------------------------------------------

def test_posterpp_requires_landmarks():
    model = build("posterpp")
    assert model.needs_landmarks
    batch = {"image": torch.randn(2, 3, 32, 32), "label": torch.tensor([0, 1]), "index": torch.arange(2)}
    with pytest.raises(UserError, match="landmarks"):
        model(batch)
    with pytest.raises(UserError, match="landmarks"):
        model.predict(batch["image"])
    with pytest.raises(UserError, match=r"\(B, 68, 2\)"):
        model.predict(batch["image"], torch.zeros(2, 5, 2))


def test_posterpp_consumes_landmark_heatmaps(monkeypatch):
    model = build("posterpp").eval()
    seen = []
    render = posterpp.render_heatmaps

    def spy(points, image_size, out_size, sigma):
        maps = render(points, image_size, out_size, sigma)
        seen.append((tuple(image_size), tuple(out_size), tuple(maps.shape)))
        return maps

    monkeypatch.setattr(posterpp, "render_heatmaps", spy)
    for block in model.cross:        # layer scale starts at 1e-5 (paper); open it so the effect is visible
        block.gamma1.data.fill_(1.0)
    images = torch.randn(2, 3, 64, 64)
    points = torch.rand(2, 68, 2) * 63
    with torch.no_grad():
        a = model.predict(images, points)
        b = model.predict(images, points.flip(1))                        # same image, moved landmarks
    assert seen[0] == ((64, 64), (16, 16), (2, 68, 16, 16))               # rendered on the layer1 grid
    assert (a - b).abs().max() > 1e-4
    model.train()
    batch = {"image": images, "label": torch.tensor([0, 1]), "index": torch.arange(2), "landmarks": points}
    model.loss(model(batch), batch)[0].backward()
    assert model.landmark_encoder[0][0].weight.grad.abs().sum() > 0    # the heatmap stream is trained


# --- issue #18: what makes EAC and POSTER++ learn from scratch -----------------------------------

def test_eac_lambda_ramps_up_from_scratch_only():
    model = build("eac", consistency_warmup=4).train()
    batch = {"image": torch.randn(2, 3, 32, 32), "label": torch.tensor([0, 1]), "index": torch.arange(2)}
    weights = [model.loss(model(batch), batch)[1]["lambda"] for _ in range(6)]
    assert weights == pytest.approx([1.25, 2.5, 3.75, 5.0, 5.0, 5.0])
    assert build("eac").warmup == eac.SCRATCH_WARMUP
    model.eval()
    with torch.no_grad():
        model.loss(model(batch), batch)               # evaluation does not advance the ramp
    assert int(model.steps_done) == 6


def test_posterpp_head_lr_factor_spares_the_trunk():
    model = build("posterpp", head_lr_factor=0.1)
    groups = {g["lr"]: g["params"] for g in model.param_groups(5e-4)}
    assert sorted(groups) == pytest.approx([5e-5, 5e-4])
    trunk = {id(p) for p in model.trunk.parameters()}
    assert {id(p) for p in groups[5e-4]} == trunk
    assert sum(len(ps) for ps in groups.values()) == sum(1 for p in model.parameters() if p.requires_grad)


def test_demo_recipe_merges_a_methods_own_demo_settings():
    from lldif_bench.demo import DEMO_RECIPE, demo_recipe

    assert demo_recipe("resnet18") == DEMO_RECIPE
    assert demo_recipe("posterpp")["method_options"] == {"head_lr_factor": 0.1}
    assert demo_recipe("posterpp", {"lr": 1e-3})["lr"] == 1e-3
    lldif = demo_recipe("lldif")  # LLDif's cpu preset at 56 px, from its builder like any method's
    assert lldif["method_options"] == {"config": "cpu"} and lldif["image_size"] == 56
