"""The ``kosugi`` flavour: the Lightroom-imitating editor of Kosugi & Yamasaki (AAAI 2020), the
paper's citation for "Lightroom". Written from the design note's description, in our own words.

Per image (sliders in [-1, 1] = Lightroom value / 100; exposure e = EV / 5):

1. linear sRGB -> a ProPhoto-like RGB: sRGB->XYZ->ProPhoto matrix with rows normalised to sum 1
   (neutral stays neutral), clip to [0, 1], gamma 1/1.8 with a linear toe (x16 below 1/512);
2. in the logit of those values: exposure adds ``5 e`` to every channel; temperature ``t`` adds
   ``(2t, 1.6t, 0)`` to (R, G, B) when warming and ``(0, -t, -2t)`` when cooling; tint ``k`` adds
   ``(k, 0, 2k)`` (magenta) or ``(-k, -2k, 0)`` (green). Logit values are clamped to
   [1e-3, 1 - 1e-3] first. ``sigmoid(logit(p) + d) = p e^d / (1 - p + p e^d)`` is used directly;
3. on HSV value V = max(R, G, B): highlights ``V' = 1 - (1 - V)(1 - 5h sigmoid(5(V - 1)))``, then
   shadows ``V'' = V'(1 + 5s (1 - sigmoid(5 V')))``; RGB is scaled by ``V''/V`` (hue and saturation
   kept);
4. back: inverse gamma, inverse matrix, clip to [0, 1] -> linear sRGB.

Grey images skip the matrix and the temperature/tint terms. Not differentiable at the clip points.
"""

from __future__ import annotations

import numpy as np
import torch

from degradations.numerics import EXACT, Numerics
from degradations.white_balance import XYZ_FROM_RGB, apply_matrix

_XYZ_TO_PROPHOTO = np.array([[1.3459433, -0.2556075, -0.0511118],
                             [-0.5445989, 1.5081673, 0.0205351],
                             [0.0, 0.0, 1.2118128]], dtype=np.float64)
PROPHOTO_FROM_SRGB = _XYZ_TO_PROPHOTO @ XYZ_FROM_RGB
PROPHOTO_FROM_SRGB = PROPHOTO_FROM_SRGB / PROPHOTO_FROM_SRGB.sum(axis=1, keepdims=True)
SRGB_FROM_PROPHOTO = np.linalg.inv(PROPHOTO_FROM_SRGB)
LOGIT_EPS = 1e-3


def logit_shifts(ev: torch.Tensor, temp: torch.Tensor, tint: torch.Tensor) -> torch.Tensor:
    """Per-image, per-channel logit offsets ``(B, 3)`` from EV and the temperature/tint sliders
    (``temp``, ``tint`` in [-1, 1])."""
    e = ev / 5.0
    t_warm, t_cool = temp.clamp(min=0.0), temp.clamp(max=0.0)
    k_mag, k_green = tint.clamp(min=0.0), tint.clamp(max=0.0)
    r = 5.0 * e + 2.0 * t_warm + k_mag - k_green
    g = 5.0 * e + 1.6 * t_warm - 1.0 * t_cool - 2.0 * k_green
    b = 5.0 * e - 2.0 * t_cool + 2.0 * k_mag
    return torch.stack([r, g, b], dim=-1)


def kosugi_edit(lin: torch.Tensor, ev: torch.Tensor, temp: torch.Tensor, tint: torch.Tensor,
                highlights: torch.Tensor, shadows: torch.Tensor, *,
                num: Numerics = EXACT) -> torch.Tensor:
    """Apply the Kosugi editor to linear sRGB ``(B, C, H, W)``; parameters ``(B,)`` (sliders in
    [-1, 1], EV in stops). Returns linear sRGB in [0, 1]."""
    dtype = lin.dtype
    colour = lin.shape[1] == 3
    bsz = lin.shape[0]
    if colour:
        m = torch.as_tensor(PROPHOTO_FROM_SRGB, dtype=dtype, device=lin.device).expand(bsz, 3, 3)
        q = apply_matrix(lin, m)
        shifts = logit_shifts(ev, temp, tint)
    else:
        q = lin
        shifts = logit_shifts(ev, torch.zeros_like(temp), torch.zeros_like(tint))[:, 1:2]
    p = num.pp_encode(q.clamp(0.0, 1.0)).clamp(LOGIT_EPS, 1.0 - LOGIT_EPS)
    k = num.exp2(shifts * (1.0 / np.log(2.0))).to(dtype)[:, :, None, None]
    pk = p * k
    y = pk / ((1.0 - p) + pk)
    v = y.amax(dim=1, keepdim=True)
    h = (highlights.to(dtype) * 5.0).view(-1, 1, 1, 1)
    s = (shadows.to(dtype) * 5.0).view(-1, 1, 1, 1)
    v1 = 1.0 - (1.0 - v) * (1.0 - h * num.sigmoid5(v - 1.0))
    v2 = v1 * (1.0 + s * (1.0 - num.sigmoid5(v1)))
    y = y * (v2 / v)
    q = num.pp_decode(y)
    if colour:
        m_inv = torch.as_tensor(SRGB_FROM_PROPHOTO, dtype=dtype, device=lin.device).expand(bsz, 3, 3)
        q = apply_matrix(q, m_inv)
    return q.clamp(0.0, 1.0)
