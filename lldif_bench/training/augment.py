"""Batched on-device augmentation: flip, random-resized crop, colour jitter, random erasing.

Parameters are sampled apart from their application (kornia's habit): :func:`sample_params` draws
every random number for a *global* batch from an explicit ``torch.Generator`` on the CPU, and
:func:`augment_images` applies them on the training device (crop + flip as one affine
``grid_sample``; colour with Kornia's ops; erasing as a mask). So the same seed gives
the same augmented batch on any device, a resumed run re-draws exactly what it would have drawn,
and under DDP each rank applies its slice of the global batch's parameters.
Landmarks follow the geometric part (:func:`transform_landmarks`, with the iBUG-68 mirror order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from kornia.enhance import adjust_hue, adjust_saturation
from torch import Tensor

from lldif_bench.training.config import AugmentConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# iBUG-68 index of each point's mirror image (jaw, brows, nose, eyes, mouth).
IBUG68_MIRROR = (
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65]
)


@dataclass
class AugmentParams:
    """Per-sample parameters of one batch (CPU or device tensors, first dimension = batch)."""

    flip: Tensor        # (B,) bool
    box: Tensor         # (B, 4) float x0, y0, x1, y1 in pixel-centre coordinates (inclusive corners)
    brightness: Tensor  # (B,) multiplicative factor
    contrast: Tensor    # (B,) blend factor with the image's grey mean
    saturation: Tensor  # (B,)
    hue: Tensor         # (B,) radians
    erase: Tensor       # (B, 4) long x0, y0, x1, y1 (exclusive); an empty box erases nothing

    def __getitem__(self, rows: slice) -> AugmentParams:
        return AugmentParams(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def to(self, device: torch.device) -> AugmentParams:
        return AugmentParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=g, dtype=torch.float64)


def _boxes(n: int, size: int, scale, ratio, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Box width/height (floats, ≤ size) with area fraction in ``scale`` and aspect in ``ratio``."""
    area = _uniform(n, *scale, g) * size * size
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), g)
    r = torch.exp(log_r)
    w = torch.sqrt(area * r).clamp(1, size)
    h = torch.sqrt(area / r).clamp(1, size)
    return w, h


def sample_params(n: int, size: int, cfg: AugmentConfig, generator: torch.Generator) -> AugmentParams:
    """Draw the parameters of ``n`` samples of a ``size``×``size`` batch (CPU, float64 sampling)."""
    g = generator
    flip = torch.rand(n, generator=g) < cfg.hflip
    # random-resized crop
    w, h = _boxes(n, size, cfg.crop_scale, cfg.crop_ratio, g)
    x0 = torch.rand(n, generator=g, dtype=torch.float64) * (size - w)
    y0 = torch.rand(n, generator=g, dtype=torch.float64) * (size - h)
    crop_on = torch.rand(n, generator=g) < cfg.crop_p
    full = torch.tensor([0.0, 0.0, size - 1.0, size - 1.0], dtype=torch.float64)
    box = torch.stack([x0, y0, x0 + w - 1, y0 + h - 1], dim=1).clamp(0, size - 1)
    box = torch.where(crop_on[:, None], box, full)
    # colour jitter (identity factors where off)
    jit = torch.rand(n, generator=g) < cfg.jitter_p
    bright = torch.where(jit, _uniform(n, 1 - cfg.brightness, 1 + cfg.brightness, g), 1.0)
    contrast = torch.where(jit, _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, g), 1.0)
    sat = torch.where(jit, _uniform(n, 1 - cfg.saturation, 1 + cfg.saturation, g), 1.0)
    hue = torch.where(jit, _uniform(n, -cfg.hue, cfg.hue, g) * 2 * math.pi, 0.0)
    # random erasing
    ew, eh = _boxes(n, size, cfg.erase_scale, cfg.erase_ratio, g)
    ew, eh = ew.round().long().clamp(1, size), eh.round().long().clamp(1, size)
    ex = (torch.rand(n, generator=g, dtype=torch.float64) * (size - ew + 1)).floor().long()
    ey = (torch.rand(n, generator=g, dtype=torch.float64) * (size - eh + 1)).floor().long()
    erase_on = torch.rand(n, generator=g) < cfg.erase_p
    erase = torch.stack([ex, ey, ex + ew, ey + eh], dim=1) * erase_on[:, None]
    return AugmentParams(flip, box.float(), bright.float(), contrast.float(), sat.float(), hue.float(), erase)


def normalize(images: Tensor, input_scale: float = 1.0) -> Tensor:
    """ImageNet mean/std normalisation of ``(B, 3, H, W)`` images whose values × ``input_scale`` lie in
    [0, 1] (``input_scale=1/255`` normalises raw 0–255 values), in one fused multiply-add pass."""
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    bias = (-images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1) / std).expand(images.shape[0], 3, 1, 1)
    return torch.addcmul(bias, images, input_scale / std)


def augment_images(images: Tensor, p: AugmentParams, *, input_scale: float = 1.0) -> Tensor:
    """Apply ``p`` to ``(B, 3, S, S)`` float images (values × ``input_scale`` in [0, 1]); returns
    ImageNet-normalised images. Passing raw 0–255 floats with ``input_scale=1/255`` saves a pass."""
    b, _, s, _ = images.shape
    p = p.to(images.device)
    x = images
    # geometry: crop box and flip as one affine resampling (align_corners: box corners → output corners)
    full = p.box.new_tensor([0.0, 0.0, s - 1.0, s - 1.0])
    if bool(p.flip.any() or (p.box != full).any()):
        x0, y0, x1, y1 = p.box.unbind(1)
        sign = 1.0 - 2.0 * p.flip.to(p.box.dtype)
        theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
        theta[:, 0, 0] = sign * (x1 - x0) / (s - 1)
        theta[:, 0, 2] = (x0 + x1) / (s - 1) - 1
        theta[:, 1, 1] = (y1 - y0) / (s - 1)
        theta[:, 1, 2] = (y0 + y1) / (s - 1) - 1
        grid = F.affine_grid(theta, [b, 3, s, s], align_corners=True)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    # colour (torchvision semantics: brightness scales, contrast blends with the grey mean)
    if bool((p.brightness != 1).any() or (p.contrast != 1).any() or (p.saturation != 1).any()
            or (p.hue != 0).any()):
        x = (x * (p.brightness.view(b, 1, 1, 1).to(x.dtype) * input_scale)).clamp(0, 1)
        input_scale = 1.0
        grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).mean(dim=(1, 2)).view(b, 1, 1, 1)
        c = p.contrast.view(b, 1, 1, 1).to(x.dtype)
        x = (c * x + (1 - c) * grey).clamp(0, 1)
        x = adjust_saturation(x, p.saturation.to(x.dtype)).clamp(0, 1)
        x = adjust_hue(x, p.hue.to(x.dtype)).clamp(0, 1)
    x = normalize(x, input_scale)
    # erasing (after normalisation, value 0 = the mean colour, as torchvision's RandomErasing)
    coords = torch.arange(s, device=x.device)
    ex0, ey0, ex1, ey1 = (t.view(b, 1, 1) for t in p.erase.unbind(1))
    inside = ((coords.view(1, 1, s) >= ex0) & (coords.view(1, 1, s) < ex1)
              & (coords.view(1, s, 1) >= ey0) & (coords.view(1, s, 1) < ey1))
    return x.masked_fill_(inside.unsqueeze(1), 0.0) if bool(p.erase.any()) else x


def transform_landmarks(points: Tensor, p: AugmentParams, size: int) -> Tensor:
    """Move ``(B, 68, 2)`` pixel landmarks through the crop and flip of ``p`` (iBUG-68 order kept)."""
    p = p.to(points.device)
    x0, y0, x1, y1 = (t.view(-1, 1) for t in p.box.unbind(1))
    sx = (size - 1) / (x1 - x0).clamp_min(1e-6)
    sy = (size - 1) / (y1 - y0).clamp_min(1e-6)
    out = torch.stack([(points[..., 0] - x0) * sx, (points[..., 1] - y0) * sy], dim=-1)
    mirrored = out[:, IBUG68_MIRROR].clone()
    mirrored[..., 0] = (size - 1) - mirrored[..., 0]
    return torch.where(p.flip.view(-1, 1, 1), mirrored, out)
