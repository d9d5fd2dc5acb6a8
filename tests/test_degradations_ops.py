"""Properties of the degradation ops and the pipeline (issue 2, item 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from degradations import (
    PipelineOptions,
    adjust_exposure,
    degrade,
    degrade_batch_uint8,
    highlights_shadows,
    luminance,
    poisson_gaussian_noise,
)
from degradations.kosugi import kosugi_edit
from degradations.noise import standard_normal
from degradations.numerics import (
    NUMERICS,
    exp2_deterministic,
    exp2_deterministic_,
    np_linear_to_srgb,
    np_srgb_to_linear,
)
from degradations.transfer import (
    linear_to_srgb,
    linear_to_uint8,
    srgb_to_linear,
    uint8_to_linear,
)
from degradations.white_balance import (
    REFERENCE_TEMPERATURE,
    REFERENCE_TINT,
    apply_matrix,
    incremental_to_source,
    mired_tint_to_xy,
    white_balance_matrix,
    xy_to_temperature_tint,
)

F64 = torch.float64
EXACT, DET = NUMERICS.get("exact"), NUMERICS.get("deterministic")
KOSUGI = type("P", (), {"options": PipelineOptions(flavor="kosugi")})()


def smooth_images(b=4, c=3, h=32, w=32, seed=0, dtype=torch.float32, lo=0.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, h // 4, w // 4, generator=g, dtype=F64)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return (lo + (hi - lo) * x).to(dtype)


def u8(x):
    return (x * 255).round().clamp(0, 255).to(torch.uint8)


STRONG = [{"exposure_ev": -2.5, "d_temp": -20.0, "d_tint": 5.0, "highlights": -80.0, "shadows": -60.0,
               "noise_shot": 2e-3, "noise_read": 1e-5, "cam_gain_r": 2.0, "cam_gain_b": 1.7, "noise_seed": i}
          for i in range(5)]


# ------------------------------------------------------------------ transfer functions and LUTs

def test_uint8_levels_roundtrip_exactly_through_luts():
    levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 1, 256)
    assert torch.equal(linear_to_uint8(uint8_to_linear(levels)), levels)


def test_lut_encode_within_one_code_of_analytic():
    lin = torch.linspace(0, 1, 200001, dtype=F64)
    analytic = np.floor(np_linear_to_srgb(lin.numpy()) * 255 + 0.5)
    lut = linear_to_uint8(lin.float()).numpy().astype(np.float64)
    assert np.abs(analytic - lut).max() <= 1
    # float path matches Kornia's transfer functions
    v = torch.rand(2, 3, 5, 5, dtype=F64)
    assert torch.allclose(srgb_to_linear(v), torch.from_numpy(np_srgb_to_linear(v.numpy())), atol=1e-12)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(v)), v, atol=1e-9)


def test_deterministic_exp2_accuracy_and_exact_integers():
    x = torch.linspace(-10, 10, 100001, dtype=F64)
    rel = (exp2_deterministic(x) / torch.exp2(x) - 1).abs().max()
    assert rel < 1e-8
    assert exp2_deterministic(torch.tensor([-1.0, 0.0, 1.0, -3.0])).tolist() == [0.5, 1.0, 2.0, 0.125]


# ------------------------------------------------------------------ exposure

def test_minus_one_ev_halves_linear_exactly_and_ev_adds():
    lin = smooth_images(dtype=F64)
    ev = torch.full((4,), -1.0, dtype=F64)
    for num in (EXACT, DET):
        assert torch.equal(adjust_exposure(lin, ev, num=num), lin * 0.5)
        assert torch.equal(adjust_exposure(lin, torch.zeros(4, dtype=F64), num=num), lin)
    a, b = torch.full((4,), -0.7, dtype=F64), torch.full((4,), -1.6, dtype=F64)
    assert torch.allclose(adjust_exposure(adjust_exposure(lin, a), b), adjust_exposure(lin, a + b), rtol=1e-12)


def test_dng_tone_keeps_white_and_is_c1_monotone():
    x = torch.linspace(0, 1, 2001, dtype=F64).view(1, 1, 1, -1)
    y = adjust_exposure(x, torch.tensor([-2.0], dtype=F64), mode="dng_tone")
    assert abs(float(y[..., -1]) - 1.0) < 1e-12
    assert bool((y.diff(dim=-1) > 0).all())
    s = 0.25
    assert torch.allclose(y[..., :400], x[..., :400] * s)  # plain gain below 0.25


# ------------------------------------------------------------------ white balance

def test_robertson_reference_points_and_round_trip():
    t, tint = xy_to_temperature_tint(0.3127, 0.3290)  # D65
    assert abs(t - 6504) < 2 and abs(tint - 9.8) < 0.2
    t, tint = xy_to_temperature_tint(0.44757, 0.40745)  # illuminant A
    assert abs(t - 2856) < 2 and abs(tint) < 0.2
    kelvin = torch.tensor([2500.0, 3200.0, 5000.0, 7500.0, 15000.0], dtype=F64)
    tints = torch.tensor([-40.0, 0.0, 10.0, 25.0, -5.0], dtype=F64)
    x, y = mired_tint_to_xy(1e6 / kelvin, tints)
    for k, tt, xi, yi in zip(kelvin.tolist(), tints.tolist(), x.tolist(), y.tolist()):
        k2, t2 = xy_to_temperature_tint(xi, yi)
        assert abs(k2 - k) < 1.0 and abs(t2 - tt) < 0.1


def test_wb_identity_at_reference_and_neutral_luminance_kept():
    m = white_balance_matrix(torch.tensor([1e6 / REFERENCE_TEMPERATURE], dtype=F64),
                             torch.tensor([REFERENCE_TINT], dtype=F64))
    assert torch.allclose(m[0], torch.eye(3, dtype=F64), atol=1e-6)
    mired, tint = incremental_to_source(torch.tensor([-60.0, 35.0], dtype=F64), torch.tensor([20.0, -40.0], dtype=F64))
    grey = torch.full((2, 3, 2, 2), 0.18, dtype=F64)
    out = apply_matrix(grey, white_balance_matrix(mired, tint))
    assert torch.allclose(luminance(out), luminance(grey), rtol=1e-9)


@pytest.mark.parametrize("key,sign", [("d_temp", +1), ("d_temp", -1), ("d_tint", +1), ("d_tint", -1)])
def test_wb_direction(key, sign):
    grey = torch.full((1, 3, 4, 4), 0.5, dtype=F64)
    out = degrade(grey, [{key: 40.0 * sign}])
    r, g, b = (float(out[0, i].mean()) for i in range(3))
    if key == "d_temp":  # warmer = more red than blue; cooler = bluer
        assert (r / b > 1.02) if sign > 0 else (b / r > 1.02)
    else:  # magenta = less green; green = more green
        assert (g < (r + b) / 2 - 0.01) if sign > 0 else (g > (r + b) / 2 + 0.01)


def test_absolute_kelvin_lower_than_reference_makes_image_bluer():
    grey = torch.full((1, 3, 4, 4), 0.5, dtype=F64)
    out = degrade(grey, [{"wb_mode": "absolute", "temperature_k": 3200.0, "tint": 0.0}])
    assert float(out[0, 2].mean()) > float(out[0, 0].mean()) + 0.05


# ------------------------------------------------------------------ highlights / shadows

def _ramp(n=64):
    v = torch.linspace(0.02, 1.0, n, dtype=F64)
    return v.view(1, 1, 1, n).expand(1, 3, 1, n).clone()


def test_tone_identity_at_zero():
    lin = smooth_images(dtype=F64)
    z = torch.zeros(4, dtype=F64)
    assert torch.equal(highlights_shadows(lin, z, z), lin)
    assert torch.equal(highlights_shadows(lin, z, z, num=DET), lin)


def test_highlights_and_shadows_selectivity():
    lin = _ramp()
    one, zero = torch.tensor([-100.0], dtype=F64), torch.tensor([0.0], dtype=F64)
    dark, bright = slice(0, 4), slice(-4, None)
    cases = ((one, zero, slice(-2, None), bright, dark), (zero, one, slice(0, 2), dark, bright))
    for hl, sh, extreme, hit, spared in cases:
        change = 1 - highlights_shadows(lin, hl, sh, radius_frac=0) / lin  # fraction of light removed
        assert float(change[..., extreme].min()) > 0.45
        assert float(change[..., spared].max()) < 0.25 * float(change[..., hit].min())


def test_tone_monotone_in_slider_and_in_input_luminance():
    lin = smooth_images(b=1, dtype=F64)
    sliders = torch.linspace(-100, 100, 21, dtype=F64)
    for which in ("h", "s"):
        outs = []
        for v in sliders:
            hl = v.view(1) if which == "h" else torch.zeros(1, dtype=F64)
            sh = v.view(1) if which == "s" else torch.zeros(1, dtype=F64)
            outs.append(luminance(highlights_shadows(lin, hl, sh)))
        outs = torch.stack(outs)
        assert bool((outs.diff(dim=0) >= -1e-12).all())
    ramp = _ramp(512)
    for h, s in ((-100.0, -100.0), (-50.0, 50.0), (100.0, 100.0), (-100.0, 100.0)):
        y = luminance(highlights_shadows(ramp, torch.tensor([h], dtype=F64), torch.tensor([s], dtype=F64),
                                         radius_frac=0))
        assert bool((y.diff(dim=-1) > 0).all()), (h, s)


def test_tone_preserves_hue():
    lin = smooth_images(dtype=F64, lo=0.05, hi=0.9)
    out = highlights_shadows(lin, torch.tensor([-90.0, 40, -30, 100], dtype=F64),
                             torch.tensor([-70.0, 60, 20, -100], dtype=F64))
    ratio = out / lin
    assert torch.allclose(ratio[:, 0], ratio[:, 1], rtol=1e-6) and torch.allclose(ratio[:, 0], ratio[:, 2], rtol=1e-6)


# ------------------------------------------------------------------ noise

def test_noise_identity_and_statistics():
    lin = torch.full((1, 1, 200, 200), 0.2, dtype=F64)
    z = torch.zeros(1, dtype=F64)
    eps = standard_normal([7], (1, 200, 200), lin.device, F64)
    assert torch.equal(poisson_gaussian_noise(lin, z, z, eps), lin)
    shot, read = 4e-3, 1e-4
    out = poisson_gaussian_noise(lin, torch.tensor([shot], dtype=F64), torch.tensor([read], dtype=F64), eps)
    n = out.numel()
    var = shot * 0.2 + read
    assert abs(float(out.mean()) - 0.2) < 4 * (var / n) ** 0.5
    assert abs(float(out.var()) / var - 1) < 4 * (2 / n) ** 0.5
    assert torch.equal(standard_normal([7], (1, 200, 200), lin.device, F64), eps)
    assert not torch.equal(standard_normal([8], (1, 200, 200), lin.device, F64), eps)


# ------------------------------------------------------------------ pipeline

@pytest.mark.parametrize("preset", [None, KOSUGI], ids=["lrlike", "kosugi"])
@pytest.mark.parametrize("c", [3, 1])
def test_uint8_identity_at_neutral_and_batch_invariance(preset, c):
    x = u8(smooth_images(b=5, c=c, h=40, w=36))
    out = degrade_batch_uint8(x, [{}] * 5, preset=preset)
    assert (out.int() - x.int()).abs().max() <= 1
    if preset is None:
        assert torch.equal(out, x)
    # mix images that need the halo mask (|slider| > 50) with images that do not
    params = [dict(p, highlights=-30.0, shadows=-20.0) if i % 2 else p for i, p in enumerate(STRONG)]
    whole = degrade_batch_uint8(x, params, preset=preset)
    singles = torch.cat([degrade_batch_uint8(x[i:i + 1], params[i:i + 1], preset=preset) for i in range(5)])
    pairs = torch.cat([degrade_batch_uint8(x[i:i + 2], params[i:i + 2], preset=preset) for i in (0, 2)]
                      + [degrade_batch_uint8(x[4:], params[4:], preset=preset)])
    assert torch.equal(whole, singles) and torch.equal(whole, pairs)
    assert whole.float().mean() < x.float().mean() * 0.6


@pytest.mark.parametrize("c", [3, 1])
def test_uint8_chunks_and_reused_buffers_do_not_change_bytes(monkeypatch, c):
    from degradations import pipeline

    x = u8(smooth_images(b=5, c=c, h=40, w=36, seed=3))
    other = u8(smooth_images(b=3, c=c, h=24, w=52, seed=4))
    # every image its own sliders, exposure and noise (a wrong per-image table offset shows)
    params = [dict(p, exposure_ev=-1.0 - 0.4 * i, highlights=-85.0 + 12 * i, shadows=-70.0 + 9 * i,
                   d_temp=-30.0 + 11 * i) for i, p in enumerate(STRONG)]
    whole = degrade_batch_uint8(x, params)
    degrade_batch_uint8(other, params[:3])  # buffers resized for another shape in between
    monkeypatch.setattr(pipeline, "CPU_CHUNK_ELEMENTS", 2 * c * 40 * 36)  # chunks of 2, 2, 1 images
    assert torch.equal(degrade_batch_uint8(x, params), whole)


def test_params_to_tensors_fills_absent_and_none_values_with_neutral():
    from degradations.pipeline import NEUTRAL, params_to_tensors

    t = params_to_tensors([{"exposure_ev": -1.5, "highlights": None, "noise_seed": 7}, {"shadows": 20}])
    assert t["exposure_ev"].tolist() == [-1.5, 0.0] and t["highlights"].tolist() == [0.0, 0.0]
    assert t["shadows"].tolist() == [0.0, 20.0] and t["shadows"].dtype == F64
    assert t["temperature_k"].tolist() == [NEUTRAL["temperature_k"]] * 2
    assert t["noise_seed"] == [7, 0] and t["wb_mode"] == ["none", "none"]
    with pytest.raises(ValueError):
        params_to_tensors([{"exposure_ev": "dark"}])


def test_scratch_buffers_give_the_same_bits_as_fresh_tensors():
    """The uint8 path keeps intermediates in reused buffers; each op gives the same bits that way."""
    from degradations.tone import (
        gain_table,
        gaussian_blur,
        lightness_knots,
        sqrt_lightness_knots,
        upsample_bilinear,
    )
    from degradations.transfer import decode_lut, decode_uint8_into
    from degradations.uint8_path import Workspace

    ws = Workspace(torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    small = torch.rand(3, 1, 9, 13, generator=g)
    x = torch.randn(4, 257, generator=g, dtype=F64) * 20
    s, h = torch.randn(2, 3, 1, generator=g, dtype=F64), torch.randn(2, 3, 1, generator=g, dtype=F64)
    knots = torch.stack([sqrt_lightness_knots(torch.device("cpu")), lightness_knots(torch.device("cpu"))])
    for _ in range(2):  # the second round reuses the buffers
        assert torch.equal(exp2_deterministic(x), exp2_deterministic_(x.clone(), ws))
        assert torch.equal(gain_table(s, h, knots.view(2, 1, -1)), gain_table(s, h, knots.view(2, 1, -1), ws))
        assert torch.equal(gain_table(s[0].view(-1), h[0].view(-1), knots[0]),
                           gain_table(s[0].view(-1), h[0].view(-1), knots[0], ws))
        for sigma in (0.6, 2.8):  # radius 2 and 9 (wider than the 9-row input: edge replication)
            assert torch.equal(gaussian_blur(small, sigma), gaussian_blur(small, sigma, ws))
        assert torch.equal(DET.lightness(small * 1.2 - 0.1), DET.lightness(small * 1.2 - 0.1, ws))
        assert torch.equal(upsample_bilinear(small, (35, 50), 4), upsample_bilinear(small, (35, 50), 4, ws))
    codes = (torch.rand(2, 3, 300, 301, generator=g) * 256).to(torch.uint8)  # > one cv2.LUT piece
    out = decode_uint8_into(codes, torch.empty(codes.shape), torch.empty(codes.shape, dtype=torch.int32))
    assert torch.equal(out, decode_lut(torch.device("cpu"))[codes.long()])


@pytest.mark.parametrize("c", [3, 1])
@pytest.mark.parametrize("preset", [None, KOSUGI], ids=["lrlike", "kosugi"])
def test_uint8_path_within_one_code_of_analytic(preset, c):
    x = u8(smooth_images(b=5, c=c, h=40, w=40))
    fast = degrade_batch_uint8(x, STRONG, preset=preset)
    opts = preset.options if preset else None
    analytic = degrade(x.double() / 255, STRONG, options=opts)
    diff = ((analytic * 255).round() - fast.double()).abs()
    assert float(diff.max()) <= 1


def test_float_path_identity_and_batch_consistency():
    x = smooth_images(b=4)
    assert float((degrade(x, [{}] * 4) - x).abs().max()) < 0.5 / 255
    whole = degrade(x, STRONG[:4])
    singles = torch.cat([degrade(x[i:i + 1], STRONG[i:i + 1]) for i in range(4)])
    assert torch.allclose(whole, singles, atol=1e-6)


@pytest.mark.parametrize("flavor", ["lrlike", "kosugi"])
def test_output_range_at_extremes(flavor):
    x = u8(smooth_images(b=6))
    extremes = [{"exposure_ev": ev, "d_temp": t, "d_tint": -t, "highlights": h, "shadows": -h, "noise_shot": 0.1,
                     "noise_read": 0.1, "noise_seed": i}
                for i, (ev, t, h) in enumerate([(5, 100, 100), (-5, -100, -100), (5, -100, -100),
                                                (-5, 100, 100), (0, 0, 100), (0, 0, -100)])]
    opts = PipelineOptions(flavor=flavor)
    out = degrade(x.float() / 255, extremes, options=opts)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    out8 = degrade_batch_uint8(x, extremes, preset=type("P", (), {"options": opts})())
    assert out8.dtype == torch.uint8 and out8.shape == x.shape


@pytest.mark.parametrize("c", [3, 1])
def test_float16_close_to_float32(c):
    x = smooth_images(b=2, c=c, h=16, w=16, lo=0.05, hi=0.95)
    p = [{"exposure_ev": -2.0, "d_temp": -10.0, "d_tint": 5.0, "highlights": -40.0, "shadows": -30.0}] * 2
    y32 = degrade(x, p)
    y16 = degrade(x.half(), p)
    assert y16.dtype == torch.float16
    assert float((y16.float() - y32).abs().max()) < 2.5 / 255


def test_grey_images_stay_one_channel_and_skip_wb():
    g = u8(smooth_images(b=2, c=1))
    with_wb = degrade_batch_uint8(g, [{"exposure_ev": -2.0, "d_temp": 80.0, "d_tint": -50.0}] * 2)
    without = degrade_batch_uint8(g, [{"exposure_ev": -2.0}] * 2)
    assert with_wb.shape == g.shape and torch.equal(with_wb, without)


def test_kosugi_darkens_with_negative_exposure_and_keeps_hue_order():
    lin = smooth_images(b=1, dtype=F64, lo=0.1, hi=0.9)
    z = torch.zeros(1, dtype=F64)
    dark = kosugi_edit(lin, torch.tensor([-2.0], dtype=F64), z, z, z, z)
    assert float(luminance(dark).mean()) < 0.5 * float(luminance(lin).mean())
    warm = kosugi_edit(torch.full((1, 3, 2, 2), 0.3, dtype=F64), z, torch.tensor([0.5], dtype=F64), z, z, z)
    assert float(warm[0, 0].mean()) > float(warm[0, 2].mean())


# ------------------------------------------------------------------ gradients

def test_gradcheck_ops():
    torch.manual_seed(0)
    lin = (torch.rand(2, 3, 8, 8, dtype=F64) * 0.6 + 0.2).requires_grad_()
    ev = torch.tensor([-1.3, 0.4], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, e: adjust_exposure(a, e), (lin, ev), fast_mode=True)
    hl = torch.tensor([-70.0, 30.0], dtype=F64, requires_grad=True)
    sh = torch.tensor([-20.0, 65.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, h, s: highlights_shadows(a, h, s), (lin, hl, sh), fast_mode=True)
    dt = torch.tensor([-23.0, 41.0], dtype=F64, requires_grad=True)
    dk = torch.tensor([7.0, -12.0], dtype=F64, requires_grad=True)

    def wb(a, t, k):
        return apply_matrix(a, white_balance_matrix(*incremental_to_source(t, k)))
    assert torch.autograd.gradcheck(wb, (lin, dt, dk), fast_mode=True)
    eps = standard_normal([1, 2], (3, 8, 8), lin.device, F64)
    shot = torch.tensor([2e-3, 1e-3], dtype=F64, requires_grad=True)
    read = torch.tensor([1e-4, 3e-4], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, s, r: poisson_gaussian_noise(a, s, r, eps), (lin, shot, read),
                                    fast_mode=True)


def test_gradients_flow_through_whole_pipeline():
    x = (smooth_images(b=2, h=8, w=8, dtype=F64) * 0.6 + 0.2).requires_grad_()
    params = {"exposure_ev": torch.tensor([-1.2, -0.6], dtype=F64, requires_grad=True),
              "d_temp": torch.tensor([-15.0, 10.0], dtype=F64, requires_grad=True),
              "d_tint": torch.tensor([4.0, -3.0], dtype=F64, requires_grad=True),
              "highlights": torch.tensor([-40.0, -70.0], dtype=F64, requires_grad=True),
              "shadows": torch.tensor([-30.0, 20.0], dtype=F64, requires_grad=True)}

    def f(img, *vals):
        return degrade(img, dict(zip(params, vals)))
    assert torch.autograd.gradcheck(f, (x, *params.values()), fast_mode=True)


def test_module_wrappers_match_the_functional_ops():
    from degradations.modules import Degrade, Exposure, HighlightsShadows, WhiteBalance

    lin = smooth_images(b=2, dtype=F64)
    ev = torch.tensor([-1.0, -2.0], dtype=F64)
    assert torch.equal(Exposure()(lin, ev), adjust_exposure(lin, ev))
    h, s = torch.tensor([-60.0, 10.0], dtype=F64), torch.tensor([-20.0, -80.0], dtype=F64)
    assert torch.equal(HighlightsShadows()(lin, h, s), highlights_shadows(lin, h, s))
    wb = {"d_temp": torch.tensor([30.0, -30.0], dtype=F64), "d_tint": torch.zeros(2, dtype=F64)}
    out = WhiteBalance()(lin, wb)
    assert float(out[0, 0].mean() / out[0, 2].mean()) > float(lin[0, 0].mean() / lin[0, 2].mean())
    x = smooth_images(b=2)
    assert torch.equal(Degrade()(x, STRONG[:2]), degrade(x, STRONG[:2]))
