"""Exposure in EV stops on linear light: ``lin * 2**EV`` (what darktable does with
``crs:Exposure2012``), so -1 EV halves linear intensity exactly.

``mode="dng_tone"`` (EV < 0 only) instead applies the DNG SDK's negative-exposure curve per channel:
below 0.25 the plain gain ``s = 2**EV``, above it the quadratic ``a x^2 + b x + c`` with
``a = 16/9 (1 - s)``, ``b = s - a/2``, ``c = 1 - a - b`` (C1 at 0.25, maps 1 to 1: white stays white).
"""

from __future__ import annotations

import torch

from degradations.numerics import EXACT, Numerics

EXPOSURE_MODES = ("gain", "dng_tone")


def exposure_gain(ev: torch.Tensor, num: Numerics = EXACT) -> torch.Tensor:
    """Linear gain ``2**EV`` for per-image EVs ``(B,)``."""
    return num.exp2(ev)


def adjust_exposure(lin: torch.Tensor, ev: torch.Tensor, *, mode: str = "gain",
                    num: Numerics = EXACT) -> torch.Tensor:
    """Apply per-image EV ``(B,)`` to linear ``(B, C, H, W)``; differentiable in both."""
    s = exposure_gain(ev, num).to(lin.dtype).view(-1, 1, 1, 1)
    if mode == "gain":
        return lin * s
    if mode != "dng_tone":
        raise ValueError(f"unknown exposure mode {mode!r}; choose from {', '.join(EXPOSURE_MODES)}")
    s_tone = s.clamp(max=1.0)  # the curve is defined for darkening; brightening falls back to gain
    a = (16.0 / 9.0) * (1.0 - s_tone)
    b = s_tone - 0.5 * a
    c = 1.0 - a - b
    curve = (a * lin + b) * lin + c
    dark = torch.where(lin < 0.25, lin * s_tone, curve)
    return torch.where(s <= 1.0, dark, lin * s)
