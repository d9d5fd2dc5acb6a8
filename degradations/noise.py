"""Signal-dependent sensor noise in linear light (Poisson-Gaussian, heteroscedastic form).

``raw = lin / g``; ``raw' = raw + sqrt(shot * max(raw, 0) + read) * eps``; ``lin' = raw' * g``, with
per-channel pseudo-raw camera gains ``g = (gain_r, 1, gain_b)`` (Brooks et al. 2019, "Unprocessing")
and ``shot``/``read`` variances per image. The Gaussian approximation keeps it differentiable in
the image and in ``shot``/``read``.

``eps`` comes from a per-image seeded generator (the image's ``noise_seed`` parameter), so it is the
same for an image alone or in any batch, and on CPU and CUDA (drawn on the CPU, then moved). A
counter-based integer hash was measured too: on this CPU it cost about 10x more than
``torch.randn`` per image, so the per-image generator is used.
"""

from __future__ import annotations

import torch


def standard_normal(seeds: list[int], shape: tuple[int, ...], device: torch.device,
                    dtype: torch.dtype) -> torch.Tensor:
    """N(0, 1) samples ``(B, *shape)``; row ``b`` depends only on ``seeds[b]`` and ``shape``.

    Each image draws from its own CPU ``torch.Generator`` seeded with its noise seed, then the
    samples move to ``device``: the same noise for an image alone or in any batch, on any device.
    """
    rows = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float32)
            for s in seeds]
    return torch.stack(rows).to(device=device, dtype=dtype)


def poisson_gaussian_noise(lin: torch.Tensor, shot: torch.Tensor, read: torch.Tensor,
                           eps: torch.Tensor, gains: torch.Tensor | None = None) -> torch.Tensor:
    """Add heteroscedastic noise to linear ``(B, C, H, W)``.

    ``shot``/``read`` ``(B,)`` are variances per unit signal and at zero signal (linear units);
    ``eps`` is standard normal of the image's shape; ``gains`` ``(B, C)`` are pseudo-raw camera
    gains (default 1). Zero ``shot`` and ``read`` give the exact identity.
    """
    dtype = lin.dtype
    shot = shot.to(dtype).view(-1, 1, 1, 1)
    read = read.to(dtype).view(-1, 1, 1, 1)
    if gains is None:
        g = torch.ones(lin.shape[0], lin.shape[1], 1, 1, dtype=dtype, device=lin.device)
    else:
        g = gains.to(dtype).view(lin.shape[0], lin.shape[1], 1, 1)
    raw = lin / g
    var = shot * raw.clamp(min=0.0) + read
    sigma = torch.where(var > 0, torch.sqrt(var.clamp(min=1e-30)), torch.zeros_like(var))
    return lin + (sigma * eps.to(dtype)) * g
