"""The ``numba`` kernels of the uint8 path's ops (:mod:`degradations.kernels`; registered only where
numba is installed): the plan's constants as NumPy views, then the compiled functions of
:mod:`degradations.fused`. Per chunk: ``colour`` and ``grey`` (one fused pass per pixel), ``halo``
(the mask's block mean, blur and upsampling still run their own picks, the lightness table and the
halo curve between them are numba passes), ``levels``; per call: ``curves``, ``grey_tables``,
``white_balance``.

Each kernel gives the bytes of the torch kernel it replaces (``exact``): the same plan, the same
float32 operations per value in the same order, and the same chunk-level choices (a chunk applies
the tone curve, the halo gain or the noise to all its images when one of them needs it, as the torch
kernels do; an image that does not need it gets the factor 1 or the noise 0 from its plan).
"""

from __future__ import annotations

import numpy as np
import torch

from degradations import fused
from degradations.kernels import pick, register
from degradations.numerics import _EXP_TAYLOR, LN2
from degradations.tone import mask_downscale
from degradations.uint8_path import (
    ENCODE_SCALE,
    F32,
    Curves,
    Plan,
    Workspace,
    _halo_gain,
    _noise_eps,
    _wants,
    half_step_encode_lut,
)
from degradations.white_balance import (
    BRADFORD,
    BRADFORD_INV,
    RGB_FROM_XYZ,
    ROBERTSON_TABLE,
    TEMPERATURE_RANGE,
    TINT_SCALE,
    XYZ_FROM_RGB,
    white_balance_matrix,
)

TOP = np.float32(ENCODE_SCALE)
TAYLOR = np.array(_EXP_TAYLOR, np.float64)
assert len(TAYLOR) == 9, "fused.gain_curves unrolls a degree-8 polynomial"
_EMPTY_2D = np.zeros((0, 0), np.float32)
_EMPTY_3D = np.zeros((0, 0, 0), np.float32)
_EMPTY_1D = np.zeros(0, np.float32)


def _noise_args(plan: Plan, first: int, last: int, shape: tuple[int, ...], device: torch.device
                ) -> tuple[bool, torch.Tensor | None, np.ndarray, np.ndarray, np.ndarray]:
    """``(noise, eps, gains (b, C), shot (b,), read (b,))`` for images ``first:last``: the chunk gets
    the noise when one of its images needs it (``eps`` then the same draws as the torch kernel's)."""
    eps = _noise_eps(plan, first, last, shape, device)
    if eps is None:
        return False, None, _EMPTY_2D, _EMPTY_1D, _EMPTY_1D
    noise = plan.noise
    gains = np.stack([g.view(-1)[first:last].numpy() for g in noise["gains"]], 1)
    return True, eps, gains, noise["shot"].view(-1)[first:last].numpy(), noise["read"].view(-1)[first:last].numpy()


def _tone_args(plan: Plan) -> tuple[np.ndarray, np.ndarray, int]:
    if plan.tone is None:
        return _EMPTY_1D, _EMPTY_1D, 1
    return plan.tone.base.numpy(), plan.tone.slope.numpy(), plan.tone.n


if fused.AVAILABLE:

    @register("colour", "numba", exact=True, help="one fused numba pass per pixel (after a luminance pass "
                                                  "where the chunk needs the halo mask)")
    def colour_numba(x: torch.Tensor, out: torch.Tensor, plan: Plan, first: int, ws: Workspace) -> torch.Tensor:
        b, c, h, w = x.shape
        last = first + b
        codes, dst = x.numpy().reshape(b, c, h * w), out.numpy().reshape(b, c, h * w)
        matrix, lum = plan.matrix[first:last].numpy(), plan.lum_row[first:last].numpy()
        decode = _decode_table()
        tone = plan.tone is not None and _wants(plan.has_tone, first, last)
        base, slope, n = _tone_args(plan)
        scale = np.float32(n * n)
        halo, has_halo = _EMPTY_2D, False
        if tone and plan.local is not None and _wants(plan.has_local, first, last):
            y = ws("luminance", (b, 1, h, w), F32)
            fused.colour_luminance(codes, decode, lum, scale, y.numpy().reshape(b, h * w))
            halo, has_halo = _halo_gain(y, plan, first, ws, float(scale)).numpy().reshape(b, h * w), True
        noise, eps, gains, shot, read = _noise_args(plan, first, last, (c, h, w), x.device)
        eps_np = eps.numpy().reshape(b, c, h * w) if eps is not None else _EMPTY_3D
        fused.colour_pixels(codes, dst, decode, matrix, lum, scale, tone, base, slope, n, first, halo, has_halo,
                            noise, eps_np, gains, shot, read, TOP, _encode_table())
        return out

    @register("grey", "numba", exact=True, help="one fused numba pass per pixel (after the luminance gather "
                                                "where the chunk needs the halo mask)")
    def grey_numba(x: torch.Tensor, out: torch.Tensor, plan: Plan, first: int, ws: Workspace) -> torch.Tensor:
        b, _, h, w = x.shape
        last = first + b
        halo, has_halo = _EMPTY_2D, False
        codes = x.numpy().reshape(b, h * w)
        if plan.local is not None and _wants(plan.has_local, first, last):
            y = ws("luminance", (b, 1, h, w), F32)
            fused.table_per_image(codes, y.numpy().reshape(b, h * w), plan.levels["luminance"].numpy(), first)
            halo, has_halo = _halo_gain(y, plan, first, ws).numpy().reshape(b, h * w), True
        noise, eps, gains, shot, read = _noise_args(plan, first, last, (1, h, w), x.device)
        eps_np = eps.numpy().reshape(b, h * w) if eps is not None else _EMPTY_2D
        grey_gains = np.ascontiguousarray(gains[:, 0]) if noise else _EMPTY_1D
        fused.grey_pixels(codes, out.numpy().reshape(b, h * w), plan.levels["value"].numpy(), first, halo, has_halo,
                          noise, eps_np, grey_gains, shot, read, TOP, _encode_table())
        return out

    @register("levels", "numba", exact=True, help="one numba pass over the chunk (uint8 -> uint8 table per image)")
    def levels_numba(codes: torch.Tensor, out: torch.Tensor, tables: torch.Tensor, first: int, ws: Workspace
                     ) -> torch.Tensor:
        b = codes.shape[0]
        fused.table_per_image(codes.contiguous().numpy().reshape(b, -1), out.numpy().reshape(b, -1), tables.numpy(),
                              first)
        return out

    @register("halo", "numba", exact=True, help="the mask kernels' picks, one numba pass each for the lightness "
                                                "table and the halo curve between them")
    def halo_numba(y: torch.Tensor, plan: Plan, first: int, ws: Workspace, scale: float) -> torch.Tensor:
        b, _, h, w = y.shape
        f = mask_downscale(h, w)
        small = pick("downsample", y.device)(y, f, ws).contiguous()
        shape = tuple(small.shape)
        light = ws("halo.lightness", shape, F32)
        base, slope = _lightness_tables()
        fused.halo_lightness(small.numpy().reshape(b, -1), np.float32(1.0 / scale), base, slope,
                             light.numpy().reshape(b, -1))
        blurred = pick("blur", y.device)(light, plan.radius_frac * min(h, w) / f, ws).contiguous()
        local = ws("halo.gain", shape, F32)
        fused.curve_at(blurred.numpy().reshape(b, -1), plan.local.base.numpy(), plan.local.slope.numpy(),
                       plan.local.n, first, local.numpy().reshape(b, -1))
        return pick("upsample", y.device)(local, (h, w), f, ws)

    # grey_tables and white_balance: the torch kernel's bits on an Intel Xeon VM (2026-12-07), but not on
    # an AMD EPYC VM (AVX2, 2026-12-08): 11 of 768 grey-table values 1-2 float32 ulp apart, 2 of 231
    # white-balance matrices 1 float64 ulp apart (the cause was not found: numba here contracts no
    # multiply-add). Registered as not exact, so the tests hold them to float rounding and the
    # contract; the final bytes of every test image were identical on both machines.
    @register("grey_tables", "numba", exact=False, help="one numba pass over each image's 256 codes")
    def grey_tables_numba(plan: Plan, ws: Workspace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = plan.mix[0][0].shape[0]
        lum = ws("plan.levels.luminance", (b, 256), F32)
        value = ws("plan.levels.value", (b, 256), F32)
        codes_u8 = ws("plan.levels.u8", (b, 256), torch.uint8)
        base, slope, n = _tone_args(plan)
        fused.grey_tables(_decode_table(), plan.lum[0].view(-1).numpy(), plan.mix[0][0].view(-1).numpy(),
                          plan.tone is not None, base, slope, n, TOP, _encode_table(), lum.numpy(), value.numpy(),
                          codes_u8.numpy())
        return lum.view(-1), value.view(-1), codes_u8.view(-1)

    @register("white_balance", "numba", exact=False, help="one numba pass over the images (float64)")
    def white_balance_numba(mired: torch.Tensor, tint: torch.Tensor, *, normalisation: str = "luminance"
                            ) -> torch.Tensor:
        if normalisation not in NORMALISATIONS:
            return white_balance_matrix(mired, tint, normalisation=normalisation)  # its error message
        mired, tint = _f64(mired.detach()), _f64(tint.detach())
        out = np.empty((mired.shape[0], 3, 3), np.float64)
        fused.white_balance(mired, tint, ROBERTSON_TABLE, 1.0e6 / TEMPERATURE_RANGE[1], 1.0e6 / TEMPERATURE_RANGE[0],
                            TINT_SCALE, _reference_white(), BRADFORD, BRADFORD_INV, RGB_FROM_XYZ, XYZ_FROM_RGB,
                            NORMALISATIONS[normalisation], out)
        return torch.from_numpy(out)

    @register("curves", "numba", exact=True, help="one numba pass per curve (float64 exp2 polynomial, float32 "
                                                  "segments)")
    def curves_numba(s: torch.Tensor, h: torch.Tensor, knots: torch.Tensor, scale: torch.Tensor, ws: Workspace,
                     tags: tuple[str, ...]) -> list[Curves]:
        b, n1 = s.shape[1], knots.shape[1]
        s, h, knots, scale = _f64(s), _f64(h), _f64(knots), _f64(scale)
        curves = []
        for q, tag in enumerate(tags):  # each set in its tag's buffers, as the torch kernel's
            base = ws(f"{tag}.base_knots", (1, b, n1), F32)
            slope = ws(f"{tag}.slope_knots", (1, b, n1), F32)
            fused.gain_curves(s[q:q + 1], h[q:q + 1], knots[q:q + 1], scale[q:q + 1], TAYLOR, LN2, _pow2(),
                              base.numpy(), slope.numpy())
            curves.append(Curves(base.view(-1), slope.view(-1), n1 - 1))
        return curves


NORMALISATIONS = {"luminance": 0, "green": 1, "none": 2}


def _reference_white() -> np.ndarray:
    """The reference white's XYZ as :mod:`degradations.white_balance` computes it (float64, CPU)."""
    from degradations.white_balance import _reference_white_xyz

    return _reference_white_xyz(torch.zeros(1, dtype=torch.float64)).numpy().reshape(3)


def _f64(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.numpy(), dtype=np.float64)


def _pow2() -> np.ndarray:
    from degradations.numerics import _powers_of_two

    return _powers_of_two(torch.device("cpu"), torch.float64).numpy()


def _lightness_tables() -> tuple[np.ndarray, np.ndarray]:
    """The float32 segments of ``DETERMINISTIC.lightness`` (the same tables its torch ops use)."""
    from degradations.numerics import _LIGHTNESS_T

    assert (_LIGHTNESS_T.lo, _LIGHTNESS_T.hi, _LIGHTNESS_T.n) == (0.0, 1.0, 4096), "fused.halo_lightness assumes these"
    base, slope = _LIGHTNESS_T.tables(torch.device("cpu"), F32)
    return base.numpy(), slope.numpy()


def _decode_table() -> np.ndarray:
    from degradations.transfer import decode_lut

    return decode_lut(torch.device("cpu"), F32).numpy()


def _encode_table() -> np.ndarray:
    return half_step_encode_lut(torch.device("cpu")).numpy()
