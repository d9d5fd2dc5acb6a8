"""Per-equation unit tests for the LLDif modules (design note §1, §7 test invariants)."""

from __future__ import annotations

import pytest
import torch

from lldif_bench.errors import UserError
from lldif_bench.models.lldif import resolve_config
from lldif_bench.models.lldif.diffusion import (
    EPDDiffusion,
    make_beta_schedule,
    schedule_constants,
)
from lldif_bench.models.lldif.dlnet import (
    DLBlock,
    relative_position_index,
    window_merge,
    window_partition,
)
from lldif_bench.models.lldif.dtnet import (
    DMNet,
    DTNet,
    EPDMod,
    epd_modulate,
    mdta_attention,
)
from lldif_bench.models.lldif.laclip import LAClipImage, LuminanceBuckets, mean_luma
from lldif_bench.models.lldif.llformer import LLformer
from lldif_bench.models.lldif.losses import (
    kl_epd,
    label_alignment,
    multi_positive_itc,
    total_loss,
)
from lldif_bench.models.lldif.pnet import PNetS1, PNetS2

torch.manual_seed(0)

# §1.10 table, k = 0..3: beta, abar, sqrt(abar), sqrt(1-abar), posterior var, sigma, coef1, coef2
SCHEDULE_TABLE = [
    (0.10000, 0.90000, 0.94868, 0.31623, 0.0, 0.0, 1.00000, 0.00000),
    (0.29429, 0.63514, 0.79696, 0.60403, 0.08066, 0.28400, 0.76519, 0.23025),
    (0.59095, 0.25980, 0.50971, 0.86035, 0.29129, 0.53971, 0.63627, 0.31526),
    (0.99000, 0.00260, 0.05097, 0.99870, 0.73470, 0.85715, 0.50593, 0.07421),
]


def test_schedule_constants_match_the_note_table():
    c = schedule_constants(make_beta_schedule("sqrt_linear", 4, 0.1, 0.99))
    keys = ["betas", "alphas_cumprod", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
            "posterior_variance", "sigma", "coef1", "coef2"]
    for k, row in enumerate(SCHEDULE_TABLE):
        for key, expected in zip(keys, row):
            assert abs(float(c[key][k]) - expected) < 1e-4, (key, k)
    assert float(c["coef1"][0]) == 1.0 and float(c["coef2"][0]) == 0.0 and float(c["sigma"][0]) == 0.0


@pytest.mark.parametrize("timesteps", [1, 2, 8, 50])
def test_other_T_keep_the_endpoints(timesteps):
    betas = make_beta_schedule("sqrt_linear", timesteps, 0.1, 0.99)
    assert betas.shape == (timesteps,)
    assert abs(float(betas[-1]) - 0.99) < 1e-9
    assert len(EPDDiffusion(timesteps).coef1) == timesteps


@pytest.mark.parametrize("insert_noise", [False, True])
def test_perfect_denoiser_chain_from_eq14_returns_Z(insert_noise):
    diff = EPDDiffusion(4)
    z = torch.randn(5, 16)

    def perfect(z_t, t, cond):  # predicts Z_0 exactly (x0-parameterisation)
        return z

    start = diff.q_sample(z, 3, torch.randn_like(z))  # Eq. 14 at t = T
    result = diff.reverse(perfect, start, torch.zeros(5, 16), insert_noise=insert_noise)
    assert torch.allclose(result.z_hat, z, atol=1e-6)
    assert len(result.trajectory) == 5


def test_eq14_at_T_is_almost_pure_noise():
    diff = EPDDiffusion(4)
    z, eps = torch.ones(1, 4), torch.zeros(1, 4)
    assert torch.allclose(diff.q_sample(z, 3, eps), torch.full((1, 4), 0.05097), atol=1e-4)


def test_eps_parameterisation_with_true_noise_recovers_Z():
    diff = EPDDiffusion(4, parameterization="eps")
    z = torch.randn(3, 8)
    eps = torch.randn_like(z)
    z_t = diff.q_sample(z, 2, eps)
    assert torch.allclose(diff.predict_start(z_t, 2, eps), z, atol=1e-4)


def test_chain_is_deterministic_without_inserted_noise():
    diff = EPDDiffusion(4)
    den = torch.nn.Linear(33, 16)
    net = lambda z, t, c: den(torch.cat([z, t[:, None], c], -1))
    start, cond = torch.randn(2, 16), torch.randn(2, 16)
    a = diff.reverse(net, start, cond, insert_noise=False).z_hat
    b = diff.reverse(net, start, cond, insert_noise=False).z_hat
    c = diff.reverse(net, start, cond, insert_noise=True).z_hat
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_eq2_modulation_identity_for_unit_scale_zero_shift():
    u = torch.randn(2, 6, 5, 5)
    assert torch.equal(epd_modulate(u, torch.ones(2, 6), torch.zeros(2, 6)), u)
    assert torch.equal(epd_modulate(u, torch.zeros(2, 6), torch.zeros(2, 6), "one_plus"), u)
    mod = EPDMod(4, 6)
    with torch.no_grad():  # W1 Z = 1 and W2 Z = 0 for Z = e_0
        mod.linear.weight.zero_()
        mod.linear.weight[:6, 0] = 1
    assert torch.allclose(mod(u, torch.tensor([[1.0, 0, 0, 0]] * 2)), u)


def test_mdta_attention_map_is_channel_by_channel():
    q, k = torch.randn(2, 3, 8, 49), torch.randn(2, 3, 8, 49)
    attn = mdta_attention(q, k, torch.ones(3, 1, 1))
    assert attn.shape == (2, 3, 8, 8)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 3, 8))
    seen = {}
    dm = DMNet(24, 3)
    dm.register_forward_hook(lambda *_: None)
    from lldif_bench.models.lldif import dtnet

    original = dtnet.mdta_attention

    def spy(q, k, t):
        seen["shape"] = tuple(original(q, k, t).shape)
        return original(q, k, t)

    dtnet.mdta_attention = spy
    try:
        out = dm(torch.randn(2, 24, 14, 14))
    finally:
        dtnet.mdta_attention = original
    assert out.shape == (2, 24, 14, 14) and seen["shape"] == (2, 3, 8, 8)


def test_window_partition_merge_round_trip_and_layout():
    x = torch.randn(2, 28, 28, 5)
    windows = window_partition(x, 14)
    assert windows.shape == (8, 196, 5)
    assert torch.equal(windows[1].view(14, 14, 5), x[0, :14, 14:])  # second window of image 0
    assert torch.equal(window_merge(windows, 14, 28, 28), x)


def test_relative_position_index_is_swin_style():
    idx = relative_position_index(7)
    assert idx.shape == (49, 49)
    assert int(idx.min()) == 0 and int(idx.max()) == 13 * 13 - 1
    assert torch.all(idx.diagonal() == 6 * 13 + 6)  # zero offset → centre of the table


def test_dlblock_with_zero_layer_scale_is_identity_and_shapes_hold():
    block = DLBlock(16, 2, 7, layer_scale=0.0)
    x = torch.randn(2, 16, 14, 14)
    out = block(x, torch.randn(2, 16, 7, 7))  # 4 windows share the landmark query
    assert torch.equal(out, x)
    block = DLBlock(16, 2, 7)
    assert block(x, torch.randn(2, 16, 7, 7)).shape == x.shape


@pytest.mark.parametrize("size", [112, 224])
def test_dtnet_and_llformer_shapes(size):
    cfg = resolve_config("tiny", overrides={"image_size": size})
    net = DTNet(size, 32, (8, 16, 32), (1, 1, 2), (1, 1, 1), (1, 1), (16, 32, 64))
    f1, f2, f3 = net(torch.randn(1, 3, size, size), torch.randn(1, 32))
    assert (f1.shape, f2.shape, f3.shape) == ((1, 16, 28, 28), (1, 32, 14, 14), (1, 64, 7, 7))
    llf = LLformer(cfg, 7)
    assert llf.fusion.tokens([torch.randn(1, 2 * d, s, s) for d, s in zip((16, 32, 64), (28, 14, 7))]).shape \
        == (1, 148, 64)
    logits = llf(torch.randn(1, 3, size, size), torch.randn(1, 32), torch.rand(1, 68, 2) * size)
    assert logits.shape == (1, 7)


@pytest.mark.parametrize("size,tokens", [(112, 16), (224, 49)])
def test_laclip_and_pnets_shapes(size, tokens):
    tower = LAClipImage(24).eval()
    with torch.no_grad():
        out = tower(torch.randn(1, 3, size, size))
    assert out["tokens"].shape == (1, tokens, 512)
    assert torch.allclose(out["f_c"].norm(dim=-1), torch.ones(1)) and out["f_l"].shape == (1, 24)
    p1 = PNetS1(512, tokens, 24, 256, dim=32, heads=2)
    z = p1(out, torch.randn(1, 24), torch.randn(1, 24))
    assert z.shape == (1, 256)
    p1b = PNetS1(512, tokens, 24, 256, dim=32, heads=2, layout="image_queries")
    assert p1b(out, torch.randn(1, 24), torch.randn(1, 24)).shape == (1, 256)
    assert PNetS2(size, 256, n_feats=8, n_res=1)(torch.randn(1, 3, size, size)).shape == (1, 256)


def test_kl_is_zero_for_equal_epds_and_positive_otherwise():
    z = torch.randn(4, 32)
    assert float(kl_epd(z, z.clone())) < 1e-6
    z_hat = torch.randn(4, 32, requires_grad=True)
    kl = kl_epd(z, z_hat)
    assert float(kl.detach()) > 0
    kl.backward()
    assert z_hat.grad is not None and z_hat.grad.abs().sum() > 0


def test_total_loss_eq18_terms():
    logits, labels = torch.randn(4, 7), torch.randint(0, 7, (4,))
    z, z_hat = torch.randn(4, 8), torch.randn(4, 8)
    ce_only, parts = total_loss(logits, labels, z, z_hat, kl_weight=0, abs_weight=0, temperature=0.15)
    assert set(parts) == {"ce"}
    full, parts = total_loss(logits, labels, z, z_hat, kl_weight=1, abs_weight=0, temperature=0.15)
    assert set(parts) == {"ce", "kl"} and torch.isclose(full, ce_only + kl_epd(z, z_hat))


def test_laclip_losses_prefer_aligned_embeddings():
    keys = torch.tensor([0, 0, 1, 2])
    text = torch.nn.functional.normalize(torch.randn(3, 16), dim=-1)[keys]
    aligned = multi_positive_itc(text, text, keys, torch.tensor(10.0))
    shuffled = multi_positive_itc(text.flip(0), text, keys, torch.tensor(10.0))
    assert float(aligned) < float(shuffled)
    bank = torch.nn.functional.normalize(torch.randn(7, 16), dim=-1)
    y = torch.tensor([1, 4])
    assert float(label_alignment(bank[y], bank, y, torch.tensor(10.0))) < \
        float(label_alignment(bank[[0, 0]], bank, y, torch.tensor(10.0)))


def test_luminance_buckets_are_training_tertiles():
    buckets = LuminanceBuckets()
    buckets.update(torch.linspace(0.0, 0.3, 300))
    lo, hi = buckets.thresholds().tolist()
    assert 0.08 < lo < 0.12 and 0.18 < hi < 0.22
    assert buckets(torch.tensor([0.01, 0.15, 0.29])).tolist() == [0, 1, 2]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    grey = (torch.full((1, 3, 4, 4), 0.2) - mean) / std
    assert abs(float(mean_luma(grey)) - 0.2) < 1e-5


def test_configs_presets_variants_and_bad_keys():
    base = resolve_config("base")
    assert (base.epd_dim, base.diffusion.timesteps, base.fusion.embed_dim) == (256, 4, 768)
    assert resolve_config("small").fusion.embed_dim == 384
    assert resolve_config("base", "V1").stages.use_diffusion is False
    assert resolve_config("base", "V2").stages.kl_weight == 1.0
    assert resolve_config("base", "V3").diffusion.insert_noise_train is False
    v4 = resolve_config("base", "V4")
    assert v4.diffusion.insert_noise_train and v4.stages.kl_weight == 0 and not v4.diffusion.insert_noise_eval
    assert resolve_config("tiny", overrides={"diffusion": {"timesteps": 8}}).diffusion.timesteps == 8
    with pytest.raises(UserError, match="unknown LLDif config key"):
        resolve_config("tiny", overrides={"diffusion": {"stepz": 3}})
    with pytest.raises(UserError, match="available"):
        resolve_config("huge")
    with pytest.raises(UserError, match="variant"):
        resolve_config("base", "V9")
