"""sRGB <-> linear light, luminance, and the uint8 look-up tables of the fast export path.

The float path uses Kornia's transfer functions (``kornia.color.rgb_to_linear_rgb`` /
``linear_rgb_to_rgb``). The uint8 path decodes through a 256-entry table built from the same
formula and encodes through a 65,536-entry table indexed by ``round(clamp(x) * 65535)``; both
agree with the analytic path to within one code value (tested).
"""

from __future__ import annotations

import numpy as np
import torch

from degradations.numerics import (
    cached_table,
    gather1d,
    np_linear_to_srgb,
    np_srgb_to_linear,
)

# BT.709 / sRGB luminance weights of linear RGB (Kornia's rgb_to_grayscale defaults to BT.601).
BT709 = (0.2126, 0.7152, 0.0722)
ENCODE_LUT_SIZE = 65536


def luminance(lin: torch.Tensor) -> torch.Tensor:
    """Relative luminance ``(B, 1, H, W)`` of linear RGB (or the single grey channel itself)."""
    if lin.shape[1] == 1:
        return lin
    r, g, b = lin[:, 0:1], lin[:, 1:2], lin[:, 2:3]
    return r * BT709[0] + g * BT709[1] + b * BT709[2]


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """Kornia's sRGB decoding for ``(B, C, H, W)`` with C = 1 or 3 (differentiable)."""
    from degradations.numerics import srgb_to_linear_formula

    return srgb_to_linear_formula(x)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Kornia's sRGB encoding for ``(B, C, H, W)`` with C = 1 or 3 (differentiable)."""
    from degradations.numerics import linear_to_srgb_formula

    return linear_to_srgb_formula(x)


def decode_lut(device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """256 linear values, one per uint8 sRGB code."""
    return cached_table(("decode_u8",), lambda: np_srgb_to_linear(np.arange(256) / 255.0), device, dtype)


def decode_uint8_into(codes: torch.Tensor, out: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Linear float32 values of uint8 sRGB ``codes`` into ``out`` (contiguous float32, same shape).

    By the ``decode`` kernel of :mod:`degradations.kernels`: on the CPU OpenCV's table look-up
    (``cv2.LUT``, single-threaded in pieces); on other devices an int32 copy of the codes into
    ``index`` (same shape) and a gather. A look-up in the same table either way, so the same bits."""
    from degradations.kernels import pick

    return pick("decode", codes.device)(codes, out, index, decode_lut(codes.device, torch.float32))


def encode_lut(device: torch.device) -> torch.Tensor:
    """uint8 sRGB code of ``i / 65535`` linear, for i in 0..65535."""
    def build() -> np.ndarray:
        lin = np.arange(ENCODE_LUT_SIZE, dtype=np.float64) / (ENCODE_LUT_SIZE - 1)
        return np.clip(np.floor(np_linear_to_srgb(lin) * 255.0 + 0.5), 0, 255).astype(np.uint8)

    return cached_table(("encode_u8", ENCODE_LUT_SIZE), build, device, torch.uint8)


def uint8_to_linear(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 sRGB ``(B, C, H, W)`` -> linear float by table look-up (exact, no ``pow``)."""
    return gather1d(decode_lut(images.device, dtype), images.long())


def linear_to_uint8(lin: torch.Tensor) -> torch.Tensor:
    """Linear float -> uint8 sRGB by table look-up; clamps to [0, 1] first; NaN maps to 0."""
    pos = (lin * float(ENCODE_LUT_SIZE - 1)).add_(0.5).clamp_(0.0, float(ENCODE_LUT_SIZE - 1))
    idx = pos.nan_to_num_(nan=0.0).to(torch.int32)  # truncation = floor for non-negative values
    return gather1d(encode_lut(lin.device), idx)
