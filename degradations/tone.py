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

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from degradations.numerics import (
    EXACT,
    Numerics,
    Scratch,
    cached_table,
    exp2_deterministic,
    exp2_deterministic_,
    np_lightness,
    per_image_curve,
)
from degradations.transfer import luminance

MASK_DOWNSCALE = 4


def downsample_area(x: torch.Tensor, f: int) -> torch.Tensor:
    """Mean over ``f x f`` blocks (edge-replicated to a multiple of ``f``) of ``(B, C, H, W)``.

    ``avg_pool2d`` sums each block row by row in a fixed order, whatever the batch."""
    if f == 1:
        return x
    h, w = x.shape[-2:]
    ph, pw = (-h) % f, (-w) % f
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return F.avg_pool2d(x, f)


@functools.lru_cache(maxsize=64)
def _gauss_taps(sigma: float) -> tuple[float, ...]:
    radius = max(1, math.ceil(3.0 * sigma))
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (k / sigma) ** 2)
    return tuple((w / w.sum()).tolist())


def gaussian_blur(x: torch.Tensor, sigma: float, scratch: Scratch | None = None) -> torch.Tensor:
    """Separable Gaussian blur with edge replication, as a fixed-order sum of shifted slices
    (symmetric taps paired: ``w0 x + w1 (x[-1] + x[+1]) + ...``). With ``scratch`` (no autograd)
    the padded copies, the sums and the result live in its ``blur*`` buffers; the bits are the same."""
    if sigma < 0.3:
        return x
    taps = _gauss_taps(sigma)
    r = len(taps) // 2
    for dim in (-1, -2):
        n = x.shape[dim]
        if scratch is None:
            pad = (r, r, 0, 0) if dim == -1 else (0, 0, r, r)
            xp = F.pad(x, pad, mode="replicate")
            acc = xp.narrow(dim, r, n) * float(taps[r])
            for k in range(1, r + 1):
                acc = acc + (xp.narrow(dim, r - k, n) + xp.narrow(dim, r + k, n)) * float(taps[r + k])
        else:
            xp = _replicate_pad(x, dim, r, scratch(f"blur{dim}.padded", _grown(x.shape, dim, 2 * r), x.dtype))
            acc = torch.mul(xp.narrow(dim, r, n), float(taps[r]), out=scratch(f"blur{dim}.sum", tuple(x.shape), x.dtype))
            pair = scratch("blur.pair", tuple(x.shape), x.dtype)
            for k in range(1, r + 1):
                acc.add_(torch.add(xp.narrow(dim, r - k, n), xp.narrow(dim, r + k, n), out=pair).mul_(float(taps[r + k])))
        x = acc
    return x


def _grown(shape: torch.Size, dim: int, extra: int) -> tuple[int, ...]:
    grown = list(shape)
    grown[dim] += extra
    return tuple(grown)


def _replicate_pad(x: torch.Tensor, dim: int, r: int, out: torch.Tensor) -> torch.Tensor:
    """``x`` with ``r`` copies of its first and last slice along ``dim`` on either side, in ``out``
    (what ``F.pad(mode="replicate")`` returns)."""
    n = x.shape[dim]
    out.narrow(dim, r, n).copy_(x)
    out.narrow(dim, 0, r).copy_(x.narrow(dim, 0, 1).expand_as(out.narrow(dim, 0, r)))
    out.narrow(dim, r + n, r).copy_(x.narrow(dim, n - 1, 1).expand_as(out.narrow(dim, 0, r)))
    return out


def _bilinear_weights(n_out: int, n_in: int, f: int) -> np.ndarray:
    src = (np.arange(n_out, dtype=np.float64) + 0.5) / f - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return np.stack([i0, i1, src - i0])


def upsample_bilinear(x: torch.Tensor, size: tuple[int, int], f: int,
                      scratch: Scratch | None = None) -> torch.Tensor:
    """Bilinear upsampling (half-pixel centres, edges clamped) by gathers and exact ops only.

    Columns first (at low resolution), then whole rows (contiguous copies at full resolution); per
    dimension ``a[i0] + (a[i0 + 1] - a[i0]) * w`` with the differences taken at low resolution.
    With ``scratch`` (no autograd; ``scratch(name, shape, dtype)`` returns a reusable buffer) the
    large intermediates and the result live in its buffers.
    """
    if f == 1:
        return x
    for dim, n_out in ((-1, size[1]), (-2, size[0])):
        n_in = x.shape[dim]

        def weights(n_out: int = n_out, n_in: int = n_in) -> np.ndarray:
            return _bilinear_weights(n_out, n_in, f)

        i0 = cached_table(("bilinear", n_out, n_in, f), weights, x.device, torch.int64)[0]
        shape = [1] * x.dim()
        shape[dim] = n_out
        w = cached_table(("bilinear", n_out, n_in, f), weights, x.device, x.dtype)[2].view(shape)
        # a[i + 1] - a[i], and 0 after the last sample (where i1 = i0)
        if scratch is None:
            step = torch.cat([x.narrow(dim, 1, n_in - 1) - x.narrow(dim, 0, n_in - 1),
                              torch.zeros_like(x.narrow(dim, 0, 1))], dim)
        else:
            step = scratch(f"upsample{dim}.step", tuple(x.shape), x.dtype)
            torch.sub(x.narrow(dim, 1, n_in - 1), x.narrow(dim, 0, n_in - 1), out=step.narrow(dim, 0, n_in - 1))
            step.narrow(dim, n_in - 1, 1).zero_()
        out_shape = list(x.shape)
        out_shape[dim] = n_out
        if dim == -1:  # one flat gather is faster than index_select along the last dimension
            rows = x.numel() // n_in
            starts = (torch.arange(rows, dtype=torch.int64, device=x.device) * n_in).view(-1, 1)
            flat = (starts + i0.view(1, -1) if scratch is None else
                    torch.add(starts, i0.view(1, -1), out=scratch("upsample.index", (rows, n_out), torch.int64)))
            src, index, dim_ = (x.reshape(-1), step.reshape(-1)), flat.view(-1), 0
        else:
            src, index, dim_ = (x, step), i0, dim
        if scratch is None:
            x = (torch.index_select(src[0], dim_, index).view(out_shape)
                 + torch.index_select(src[1], dim_, index).view(out_shape) * w)
        else:
            a = scratch(f"upsample{dim}.a", tuple(out_shape), x.dtype)
            d = scratch(f"upsample{dim}.d", tuple(out_shape), x.dtype)
            torch.index_select(src[0], dim_, index, out=a.view(-1) if dim == -1 else a)
            torch.index_select(src[1], dim_, index, out=d.view(-1) if dim == -1 else d)
            x = a.add_(d.mul_(w))
    return x


def mask_downscale(h: int, w: int) -> int:
    """The factor of the halo mask's low resolution (1 for images under 16 pixels)."""
    return MASK_DOWNSCALE if min(h, w) >= 4 * MASK_DOWNSCALE else 1


def blurred_lightness_small(lum: torch.Tensor, radius_frac: float, num: Numerics = EXACT,
                            scratch: Scratch | None = None) -> torch.Tensor:
    """The halo mask at low resolution: luminance averaged over blocks of
    :func:`mask_downscale` pixels, converted to lightness and blurred. With ``scratch`` (no
    autograd) the intermediates live in its buffers; the bits are the same."""
    h, w = lum.shape[-2:]
    f = mask_downscale(h, w)
    small = num.lightness(downsample_area(lum, f), scratch)
    return gaussian_blur(small, radius_frac * min(h, w) / f, scratch)


def blurred_lightness(lum: torch.Tensor, radius_frac: float, num: Numerics = EXACT) -> torch.Tensor:
    """The low-frequency lightness used by the halo mask, upsampled bilinearly to full resolution."""
    h, w = lum.shape[-2:]
    return upsample_bilinear(blurred_lightness_small(lum, radius_frac, num), (h, w), mask_downscale(h, w))


def split_slider(slider: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(global part clamped to +-50, local part beyond +-50)."""
    inner = slider.clamp(-50.0, 50.0)
    return inner, slider - inner


CURVE_KNOTS = 256


def sqrt_lightness_knots(device: torch.device) -> torch.Tensor:
    """Lightness at ``Y = u**2`` for ``u`` on ``CURVE_KNOTS`` equal steps of [0, 1]: the knots of the
    global gain curve, which is tabulated against ``sqrt(Y)`` (smooth where ``L*`` is steep)."""
    return cached_table(("sqrt_lightness_knots", CURVE_KNOTS),
                        lambda: np_lightness(np.linspace(0.0, 1.0, CURVE_KNOTS + 1) ** 2), device, torch.float64)


def lightness_knots(device: torch.device) -> torch.Tensor:
    """``CURVE_KNOTS`` equal steps of lightness in [0, 1]: the knots of the halo gain curve."""
    return cached_table(("lightness_knots", CURVE_KNOTS),
                        lambda: np.linspace(0.0, 1.0, CURVE_KNOTS + 1), device, torch.float64)


def gain_table(s: torch.Tensor, h: torch.Tensor, knots: torch.Tensor,
               scratch: Scratch | None = None) -> torch.Tensor:
    """Per-image gain curves ``2**(s (1 - L)^2 + h L^2)`` sampled at lightness ``knots``.

    ``s`` and ``h`` ``(B,)`` or ``(..., B, 1)`` broadcast against ``(1 - knots)**2`` and ``knots**2``
    (e.g. ``(B, 1)`` against ``(n + 1,)``, or ``(2, B, 1)`` against ``(2, 1, n + 1)`` for two sets of
    knots at once); the result has ``s``'s shape with the knots' last dimension. With ``scratch``
    (no autograd) the result and the large intermediates live in its buffers (``gain.*``,
    ``exp2.*``); the bits are the same."""
    dark = 1.0 - knots
    dark2, light2 = dark * dark, knots * knots
    if s.dim() == 1:
        s, h = s.view(-1, 1), h.view(-1, 1)
    if scratch is None:
        d_ev = s * dark2
        d_ev = d_ev + h * light2 if d_ev.requires_grad else d_ev.add_(h * light2)
        return exp2_deterministic(d_ev)
    shape = (*s.shape[:-1], dark2.shape[-1])  # (torch.broadcast_shapes costs milliseconds per call)
    d_ev = torch.mul(s, dark2, out=scratch("gain.d_ev", shape, dark2.dtype))
    d_ev.add_(torch.mul(h, light2, out=scratch("gain.highlights", shape, dark2.dtype)))
    return exp2_deterministic_(d_ev, scratch)


def highlights_shadows(lin: torch.Tensor, highlights: torch.Tensor, shadows: torch.Tensor, *,
                       radius_frac: float = 0.05, halo: bool = True, gain_ev: float = 1.5,
                       num: Numerics = EXACT) -> torch.Tensor:
    """Apply per-image Highlights/Shadows sliders ``(B,)`` to linear ``(B, C, H, W)``.

    ``halo=False`` or ``radius_frac=0`` makes the whole slider act globally (a pure tone curve).
    With ``deterministic`` numerics the two gain factors are per-image curves tabulated at
    ``CURVE_KNOTS`` + 1 knots (against ``sqrt`` of luminance for the global part; against the blurred
    lightness, at the mask's low resolution and then upsampled, for the local part).
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
        table = gain_table(s1.to(wide) * k, h1.to(wide) * k, sqrt_lightness_knots(lin.device)).to(dtype)
        gain = per_image_curve(lum.clamp(min=0.0).sqrt(), table)
        if local:
            # the halo gain at the mask's low resolution, upsampled; exactly 1 for images whose
            # sliders stay within +-50
            small = blurred_lightness_small(lum, radius_frac, num)
            table = gain_table(s2.to(wide) * k, h2.to(wide) * k, lightness_knots(lin.device)).to(dtype)
            h, w = lum.shape[-2:]
            gain = gain * upsample_bilinear(per_image_curve(small, table), (h, w), mask_downscale(h, w))
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
