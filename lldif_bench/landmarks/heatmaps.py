"""Landmark points → Gaussian heatmap stacks, rendered on the points' device in one batched op.

DLNet and POSTER++ consume landmark *maps*; rendering them inside the model input path from the
cached ``(B, 68, 2)`` points costs one broadcasted ``exp`` per batch and no per-epoch CPU work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((28, 28), (14, 14), (7, 7))


def _check(points: Tensor, image_size: Sequence[int], out_size: Sequence[int], sigma: float) -> None:
    if points.ndim != 3 or points.shape[-1] != 2:
        raise ValueError(f"points must be (B, K, 2) pixel coordinates, got shape {tuple(points.shape)}")
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size must be (H, W) > 0, got {tuple(image_size)}")
    if len(out_size) != 2 or min(out_size) <= 0:
        raise ValueError(f"out_size must be (h, w) > 0, got {tuple(out_size)}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")


def render_heatmaps(points: Tensor, image_size: tuple[int, int], out_size: tuple[int, int],
                    sigma: float = 1.5) -> Tensor:
    """Render one Gaussian per point: ``(B, K, 2)`` pixel ``(x, y)`` → ``(B, K, h, w)``.

    Points are pixel coordinates of an ``image_size = (H, W)`` image (pixel centres at integer
    coordinates, as dlib and face-alignment report them). They are rescaled to the ``out_size``
    grid with the align-corners-free convention ``u = (x + 0.5) * w / W - 0.5``, so a point lands
    on the heatmap cell that covers it. ``sigma`` is in output cells. Each map peaks at exactly 1
    when the rescaled point is on a cell centre (``exp(-d² / 2σ²)``, unnormalised). Non-finite
    points (NaN from an unreadable image) give all-zero maps. Float dtypes are kept; integer
    points are rendered in float32.

    >>> pts = torch.tensor([[[50.0, 25.0]]])               # one point, x=50, y=25 in a 100×100 image
    >>> hm = render_heatmaps(pts, (100, 100), (100, 100))
    >>> hm.shape, float(hm[0, 0, 25, 50])
    (torch.Size([1, 1, 100, 100]), 1.0)
    """
    _check(points, image_size, out_size, sigma)
    if not points.is_floating_point():
        points = points.float()
    H, W = image_size
    h, w = out_size
    u = (points[..., 0] + 0.5) * (w / W) - 0.5          # (B, K) in output cells
    v = (points[..., 1] + 0.5) * (h / H) - 0.5
    xs = torch.arange(w, device=points.device, dtype=points.dtype)
    ys = torch.arange(h, device=points.device, dtype=points.dtype)
    gx = torch.exp(-((xs - u[..., None]) ** 2) / (2 * sigma ** 2))  # (B, K, w)
    gy = torch.exp(-((ys - v[..., None]) ** 2) / (2 * sigma ** 2))  # (B, K, h)
    maps = gy[..., :, None] * gx[..., None, :]                       # separable: (B, K, h, w)
    finite = torch.isfinite(points).all(dim=-1)
    return torch.where(finite[..., None, None], maps, torch.zeros((), dtype=maps.dtype, device=maps.device))


def render_multiscale(points: Tensor, image_size: tuple[int, int],
                      sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES, sigma: float = 1.5) -> list[Tensor]:
    """Heatmap stacks at several grid sizes (DLNet / POSTER++ scales 28², 14², 7² by default).

    ``sigma`` is in output cells of the first (finest) size and shrinks with the grid, so every
    scale covers the same image area (never below 0.5 cells, so coarse maps keep a visible peak).
    """
    if not sizes:
        raise ValueError("sizes must name at least one (h, w) grid")
    finest = sizes[0][1]
    return [render_heatmaps(points, image_size, size, sigma=max(sigma * size[1] / finest, 0.5))
            for size in sizes]
