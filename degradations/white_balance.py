"""White balance as Lightroom's Temperature/Tint, after the Adobe DNG SDK definition.

Temperature/Tint <-> CIE xy uses Robertson's method on the Wyszecki & Stiles isotemperature table
(mired ``r``, CIE 1960 ``u, v``, isotherm slope ``t``), with the tint as an offset along the unit
isotherm direction scaled by -3000 (the SDK's convention). The r = 325 row uses the corrected
u = 0.24792 (the SDK carries the book's typo 0.24702).

The image transform is a per-image 3x3 matrix on linear sRGB:
``M = RGB_from_XYZ . Bradford(source white -> reference white) . XYZ_from_RGB``, rescaled so that
neutral grey keeps its luminance. The reference white is D65 expressed in Adobe units
(about 6504 K, tint +9.8); adapting *from* the assumed illuminant *to* it is what a raw converter
does when the user sets Temperature/Tint.

* Absolute (``crs:Temperature`` / ``crs:Tint``): the assumed illuminant is (T, tint).
* Incremental (``crs:IncrementalTemperature`` / ``crs:IncrementalTint``, -100..100, what Lightroom
  writes for rendered JPEG/PNG): ``mired = 1e6/T_ref - k_temp * d_temp``,
  ``tint = tint_ref + k_tint * d_tint``. Adobe's mapping for rendered files is not public; the
  constants (default 1 mired and 1.5 tint units per slider unit) are our convention and recorded
  with every preset. Signs follow Lightroom: +temperature warmer, +tint more magenta.

Everything is written with ``+ - * /`` and ``sqrt`` on float64 tensors, so it is differentiable in
the temperature and tint and bit-identical per image whatever the batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

TINT_SCALE = -3000.0
# (mired, u, v, slope) -- Wyszecki & Stiles p. 228 as used by the DNG SDK, r = 325 corrected.
ROBERTSON_TABLE = np.array([
    [0, 0.18006, 0.26352, -0.24341], [10, 0.18066, 0.26589, -0.25479],
    [20, 0.18133, 0.26846, -0.26876], [30, 0.18208, 0.27119, -0.28539],
    [40, 0.18293, 0.27407, -0.30470], [50, 0.18388, 0.27709, -0.32675],
    [60, 0.18494, 0.28021, -0.35156], [70, 0.18611, 0.28342, -0.37915],
    [80, 0.18740, 0.28668, -0.40955], [90, 0.18880, 0.28997, -0.44278],
    [100, 0.19032, 0.29326, -0.47888], [125, 0.19462, 0.30141, -0.58204],
    [150, 0.19962, 0.30921, -0.70471], [175, 0.20525, 0.31647, -0.84901],
    [200, 0.21142, 0.32312, -1.0182], [225, 0.21807, 0.32909, -1.2168],
    [250, 0.22511, 0.33439, -1.4512], [275, 0.23247, 0.33904, -1.7298],
    [300, 0.24010, 0.34308, -2.0637], [325, 0.24792, 0.34655, -2.4681],
    [350, 0.25591, 0.34951, -2.9641], [375, 0.26400, 0.35200, -3.5814],
    [400, 0.27218, 0.35407, -4.3633], [425, 0.28039, 0.35577, -5.3762],
    [450, 0.28863, 0.35714, -6.7262], [475, 0.29685, 0.35823, -8.5955],
    [500, 0.30505, 0.35907, -11.324], [525, 0.31320, 0.35968, -15.628],
    [550, 0.32129, 0.36011, -23.325], [575, 0.32931, 0.36038, -40.770],
    [600, 0.33724, 0.36051, -116.45],
], dtype=np.float64)

TEMPERATURE_RANGE = (2000.0, 50000.0)
TINT_RANGE = (-150.0, 150.0)
D65_XY = (0.3127, 0.3290)

# IEC 61966-2-1 (sRGB, D65) linear RGB -> XYZ; its Y row equals the BT.709 luminance weights.
XYZ_FROM_RGB = np.array([[0.4124, 0.3576, 0.1805],
                         [0.2126, 0.7152, 0.0722],
                         [0.0193, 0.1192, 0.9505]], dtype=np.float64)
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                     [-0.7502, 1.7135, 0.0367],
                     [0.0389, -0.0685, 1.0296]], dtype=np.float64)
BRADFORD_INV = np.linalg.inv(BRADFORD)


def xy_to_temperature_tint(x: float, y: float) -> tuple[float, float]:
    """CIE xy -> (Kelvin, Adobe tint) by the DNG SDK's Robertson search (scalar, float64)."""
    denom = 1.5 - x + 6.0 * y
    u, v = 2.0 * x / denom, 3.0 * y / denom
    last_dt = last_du = last_dv = 0.0
    tab = ROBERTSON_TABLE
    for i in range(1, len(tab)):
        length = math.sqrt(1.0 + tab[i, 3] ** 2)
        du, dv = 1.0 / length, tab[i, 3] / length
        dt = -(u - tab[i, 1]) * dv + (v - tab[i, 2]) * du
        if dt <= 0.0 or i == len(tab) - 1:
            dt = -min(dt, 0.0)
            f = 0.0 if i == 1 else dt / (last_dt + dt)
            kelvin = 1.0e6 / (tab[i - 1, 0] * f + tab[i, 0] * (1.0 - f))
            uu = u - (tab[i - 1, 1] * f + tab[i, 1] * (1.0 - f))
            vv = v - (tab[i - 1, 2] * f + tab[i, 2] * (1.0 - f))
            du, dv = du * (1.0 - f) + last_du * f, dv * (1.0 - f) + last_dv * f
            n = math.sqrt(du * du + dv * dv)
            return float(kelvin), float((uu * du / n + vv * dv / n) * TINT_SCALE)
        last_dt, last_du, last_dv = dt, du, dv
    raise AssertionError("unreachable")


REFERENCE_TEMPERATURE, REFERENCE_TINT = xy_to_temperature_tint(*D65_XY)


_CONSTANTS: dict[tuple[int, torch.device, torch.dtype], tuple[np.ndarray, torch.Tensor]] = {}


def _const(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A module-level constant array as a tensor on ``like``'s device and dtype (converted once)."""
    key = (id(a), like.device, like.dtype)
    hit = _CONSTANTS.get(key)
    if hit is None or hit[0] is not a:
        hit = (a, torch.as_tensor(a, dtype=like.dtype, device=like.device))
        _CONSTANTS[key] = hit
    return hit[1]


def mired_tint_to_xy(mired: torch.Tensor, tint: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mired, Adobe tint) ``(B,)`` -> CIE xy, DNG SDK ``Get_xy_coord`` semantics (piecewise linear).

    ``mired`` is clamped to the table's valid Kelvin range (2,000..50,000 K).
    """
    lo, hi = 1.0e6 / TEMPERATURE_RANGE[1], 1.0e6 / TEMPERATURE_RANGE[0]
    r = mired.clamp(lo, hi)
    table = _const(ROBERTSON_TABLE, r)
    knots = table[:, 0].contiguous()
    i = (torch.searchsorted(knots, r.detach().contiguous(), right=True) - 1).clamp(0, len(knots) - 2)
    r0, r1 = knots[i], knots[i + 1]
    f = (r1 - r) / (r1 - r0)
    g = 1.0 - f
    u = table[i, 1] * f + table[i + 1, 1] * g
    v = table[i, 2] * f + table[i + 1, 2] * g
    t0, t1 = table[i, 3], table[i + 1, 3]
    n0, n1 = torch.sqrt(1.0 + t0 * t0), torch.sqrt(1.0 + t1 * t1)
    du = (1.0 / n0) * f + (1.0 / n1) * g
    dv = (t0 / n0) * f + (t1 / n1) * g
    n3 = torch.sqrt(du * du + dv * dv)
    offset = tint / TINT_SCALE
    u = u + du / n3 * offset
    v = v + dv / n3 * offset
    denom = u - 4.0 * v + 2.0
    return 1.5 * u / denom, v / denom


def _xy_to_xyz(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.stack([x / y, torch.ones_like(x), (1.0 - x - y) / y], dim=-1)


def mat3_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for (..., 3, 3) written as explicit sums (fixed order: batch-invariant bits)."""
    return (a[..., :, 0:1] * b[..., 0:1, :] + a[..., :, 1:2] * b[..., 1:2, :]
            + a[..., :, 2:3] * b[..., 2:3, :])


def mat3_vec(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``m @ v`` for (..., 3, 3) and (..., 3), explicit sums."""
    return m[..., :, 0] * v[..., 0:1] + m[..., :, 1] * v[..., 1:2] + m[..., :, 2] * v[..., 2:3]


def bradford(src_xyz: torch.Tensor, dst_xyz: torch.Tensor) -> torch.Tensor:
    """Linear Bradford adaptation matrices ``(B, 3, 3)`` mapping white ``src`` to white ``dst``."""
    mb = _const(BRADFORD, src_xyz)
    scale = mat3_vec(mb, dst_xyz) / mat3_vec(mb, src_xyz)
    return mat3_mul(_const(BRADFORD_INV, src_xyz).expand(scale.shape[0], 3, 3),
                    scale[..., :, None] * mb)


def incremental_to_source(d_temp: torch.Tensor, d_tint: torch.Tensor, *, k_temp: float = 1.0,
                          k_tint: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Lightroom's relative sliders (-100..100) -> assumed illuminant (mired, tint)."""
    mired = 1.0e6 / REFERENCE_TEMPERATURE - k_temp * d_temp
    tint = REFERENCE_TINT + k_tint * d_tint
    return mired, tint


_REFERENCE_WHITE: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _reference_white_xyz(like: torch.Tensor) -> torch.Tensor:
    """XYZ ``(1, 3)`` of the reference white, computed once per device and dtype by the same
    elementwise operations as a batch would (so the same bits as computing it per image)."""
    key = (like.device, like.dtype)
    white = _REFERENCE_WHITE.get(key)
    if white is None:
        with torch.no_grad():
            ref_m = torch.full((1,), 1.0e6 / REFERENCE_TEMPERATURE, dtype=like.dtype, device=like.device)
            ref_t = torch.full((1,), REFERENCE_TINT, dtype=like.dtype, device=like.device)
            white = _xy_to_xyz(*mired_tint_to_xy(ref_m, ref_t))
        _REFERENCE_WHITE[key] = white
    return white


def white_balance_matrix(mired: torch.Tensor, tint: torch.Tensor, *,
                         normalisation: str = "luminance") -> torch.Tensor:
    """Per-image linear-sRGB matrices ``(B, 3, 3)`` for an assumed illuminant (mired, tint).

    ``normalisation``: ``luminance`` (neutral grey keeps its luminance), ``green`` (G gain of a
    neutral = 1) or ``none``. At the reference illuminant the matrix is the identity (to 1e-12).
    """
    mired = mired.to(torch.float64)
    tint = tint.to(torch.float64)
    src = _xy_to_xyz(*mired_tint_to_xy(mired, tint))
    dst = _reference_white_xyz(mired).expand_as(src)
    cat = bradford(src, dst)
    b = mired.shape[0]
    m = mat3_mul(mat3_mul(_const(RGB_FROM_XYZ, cat).expand(b, 3, 3), cat),
                 _const(XYZ_FROM_RGB, cat).expand(b, 3, 3))
    ones = torch.ones(b, 3, dtype=m.dtype, device=m.device)
    neutral = mat3_vec(m, ones)
    if normalisation == "luminance":
        y = neutral[:, 0] * 0.2126 + neutral[:, 1] * 0.7152 + neutral[:, 2] * 0.0722
        m = m / y[:, None, None]
    elif normalisation == "green":
        m = m / neutral[:, 1][:, None, None]
    elif normalisation != "none":
        raise ValueError(f"unknown white-balance normalisation {normalisation!r} "
                         "(luminance, green or none)")
    return m


def apply_matrix(lin: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Multiply every pixel of linear RGB ``(B, 3, H, W)`` by its image's ``(B, 3, 3)`` matrix.

    Written as three products and two sums per output channel in a fixed order (no matmul
    kernel), so an image's result does not depend on the batch it is in.
    """
    m = m.to(lin.dtype)
    r, g, b = lin[:, 0:1], lin[:, 1:2], lin[:, 2:3]
    coef = [[m[:, i, j].view(-1, 1, 1, 1) for j in range(3)] for i in range(3)]
    if lin.requires_grad or m.requires_grad:
        return torch.cat([r * c[0] + g * c[1] + b * c[2] for c in coef], dim=1)
    out = torch.empty_like(lin)
    for i, c in enumerate(coef):
        o = out[:, i:i + 1]
        torch.mul(r, c[0], out=o)
        o.add_(g * c[1]).add_(b * c[2])
    return out
