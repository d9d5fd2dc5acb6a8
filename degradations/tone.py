"""Highlights and Shadows (Lightroom process 2012 semantics, -100..100) as a luminance-ratio op.

Each pixel gets a gain in EV taken from its perceptual lightness; the same factor multiplies R, G
and B, so hue and RGB ratios are preserved::

    Y   = BT.709 luminance (linear);  L = clamp(L*(Y)/100, 0, 1)
    Lb  = L* of Y averaged over 4x4 blocks, blurred (sigma = radius_frac * shorter side) at that
          1/4 resolution, upsampled bilinearly
    S1  = clamp(S, -50, 50);  S2 = S - S1             # the part beyond +-50 (Lightroom's "halo mask")
    dEV = G/100 * (S1 (1 - L)^2 + S2 (1 - Lb)^2)      # shadows; G = 1.5 EV at full scale
        + G/100 * (H1 L^2       + H2 Lb^2)            # highlights, split the same way
    lin = lin * 2**dEV

Up to +-50 the op is a global curve on each pixel's own lightness; the part of a slider beyond
+-50 acts through the blurred lightness, i.e. as local (halo-mask) tone mapping. The derivative of
dEV in each slider is a non-negative weight, so the output is monotone in every slider.
Negative Highlights darken the bright range and leave the darks almost unchanged; negative Shadows
darken the dark range and leave the brights almost unchanged. The blur is built from slices, sums and gathers only (no convolution kernels), so an
image's result does not depend on the batch it is in.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from degradations.numerics import (
    EXACT,
    Numerics,
    cached_table,
    exp2_deterministic,
    np_lightness,
    per_image_curve,
)
from degradations.transfer import luminance

MASK_DOWNSCALE = 4


def downsample_area(x: torch.Tensor, f: int) -> torch.Tensor:
    """Mean over ``f x f`` blocks (edge-replicated to a multiple of ``f``)."""
    if f == 1:
        return x
    h, w = x.shape[-2:]
    ph, pw = (-h) % f, (-w) % f
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    acc = None
    for i in range(f):
        for j in range(f):
            part = x[..., i::f, j::f]
            acc = part if acc is None else acc + part
    return acc * (1.0 / (f * f))


def _gauss_taps(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(3.0 * sigma))
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (k / sigma) ** 2)
    return w / w.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with edge replication, as a fixed-order sum of shifted slices."""
    if sigma < 0.3:
        return x
    taps = _gauss_taps(sigma)
    r = len(taps) // 2
    for dim in (-1, -2):
        pad = (r, r, 0, 0) if dim == -1 else (0, 0, r, r)
        xp = F.pad(x, pad, mode="replicate")
        n = x.shape[dim]
        acc = None
        for k, w in enumerate(taps):
            part = xp.narrow(dim, k, n) * float(w)
            acc = part if acc is None else acc + part
        x = acc
    return x


def _bilinear_weights(n_out: int, n_in: int, f: int) -> np.ndarray:
    src = (np.arange(n_out, dtype=np.float64) + 0.5) / f - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return np.stack([i0, i1, src - i0])


def upsample_bilinear(x: torch.Tensor, size: tuple[int, int], f: int) -> torch.Tensor:
    """Bilinear upsampling (half-pixel centres) by gathers and exact ops only."""
    if f == 1:
        return x
    for dim, n_out in ((-2, size[0]), (-1, size[1])):
        n_in = x.shape[dim]
        tab = cached_table(("bilinear", n_out, n_in, f),
                           lambda n_out=n_out, n_in=n_in: _bilinear_weights(n_out, n_in, f),
                           x.device, torch.float64)
        i0, i1 = tab[0].long(), tab[1].long()
        w = tab[2].to(x.dtype)
        shape = [1] * x.dim()
        shape[dim] = n_out
        w = w.view(shape)
        a, b = x.index_select(dim, i0), x.index_select(dim, i1)
        x = a + (b - a) * w
    return x


def blurred_lightness(lum: torch.Tensor, radius_frac: float, num: Numerics = EXACT) -> torch.Tensor:
    """The low-frequency lightness used by the halo mask: luminance averaged over 4x4 blocks,
    converted to lightness, blurred, and upsampled bilinearly to full resolution."""
    h, w = lum.shape[-2:]
    f = MASK_DOWNSCALE if min(h, w) >= 4 * MASK_DOWNSCALE else 1
    small = num.lightness(downsample_area(lum, f))
    small = gaussian_blur(small, radius_frac * min(h, w) / f)
    return upsample_bilinear(small, (h, w), f)


def split_slider(slider: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(global part clamped to +-50, local part beyond +-50)."""
    inner = slider.clamp(-50.0, 50.0)
    return inner, slider - inner


CURVE_KNOTS = 1024


def _lightness_knots(device: torch.device) -> torch.Tensor:
    return cached_table(("lightness_knots", CURVE_KNOTS),
                        lambda: np_lightness(np.linspace(0.0, 1.0, CURVE_KNOTS + 1)), device, torch.float64)


def _gain_table(s: torch.Tensor, h: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """Per-image gain curves ``2**(s (1 - L)^2 + h L^2)`` sampled at lightness ``knots``."""
    dark = 1.0 - knots
    d_ev = s.view(-1, 1) * (dark * dark) + h.view(-1, 1) * (knots * knots)
    return exp2_deterministic(d_ev)


def highlights_shadows(lin: torch.Tensor, highlights: torch.Tensor, shadows: torch.Tensor, *,
                       radius_frac: float = 0.05, halo: bool = True, gain_ev: float = 1.5,
                       num: Numerics = EXACT) -> torch.Tensor:
    """Apply per-image Highlights/Shadows sliders ``(B,)`` to linear ``(B, C, H, W)``.

    ``halo=False`` or ``radius_frac=0`` makes the whole slider act globally (a pure tone curve).
    With ``deterministic`` numerics the two gain factors are per-image curves tabulated at 1,024
    knots (on luminance for the global part, on blurred lightness for the local part).
    """
    dtype = lin.dtype
    k = gain_ev / 100.0
    h1, h2 = split_slider(highlights)
    s1, s2 = split_slider(shadows)
    local = halo and radius_frac > 0 and bool((h2 != 0).any() or (s2 != 0).any())
    if not local:
        h1, s1 = highlights, shadows
    lum = luminance(lin)
    if num.name == "deterministic":
        wide = torch.float64
        y_knots = _lightness_knots(lin.device)
        gain = per_image_curve(lum, _gain_table(s1.to(wide) * k, h1.to(wide) * k, y_knots).to(dtype))
        if local:
            # only the images whose sliders pass +-50 need the blurred mask (for the others the
            # local factor is exactly 1), so compute it for that subset
            sel = torch.nonzero((h2 != 0) | (s2 != 0)).flatten()
            base = blurred_lightness(lum.index_select(0, sel), radius_frac, num)
            l_knots = torch.linspace(0.0, 1.0, CURVE_KNOTS + 1, dtype=wide, device=lin.device)
            table = _gain_table(s2.index_select(0, sel).to(wide) * k, h2.index_select(0, sel).to(wide) * k,
                                l_knots).to(dtype)
            local_gain = gain.index_select(0, sel) * per_image_curve(base, table)
            gain = gain.index_copy(0, sel, local_gain)
        return lin * gain
    base = blurred_lightness(lum, radius_frac, num) if local else None
    lightness = num.lightness(lum)
    dark = 1.0 - lightness
    d_ev = ((s1.to(dtype) * k).view(-1, 1, 1, 1) * (dark * dark)
            + (h1.to(dtype) * k).view(-1, 1, 1, 1) * (lightness * lightness))
    if local:
        dark_b = 1.0 - base
        d_ev = d_ev + ((s2.to(dtype) * k).view(-1, 1, 1, 1) * (dark_b * dark_b)
                       + (h2.to(dtype) * k).view(-1, 1, 1, 1) * (base * base))
    return lin * num.exp2(d_ev)
