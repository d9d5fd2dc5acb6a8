"""DLNet (Eqs. 5–9; note §1.7, POSTER++ WindowAttentionGlobal): landmark-query window cross-attention.

Queries come from the landmark map (one window's worth, shared by every window), keys and values
from windows of the image features, with a Swin-style relative position bias b.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) → (B·nW, window², C); H and W must be multiples of ``window``."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_merge(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`window_partition`: (B·nW, window², C) → (B, H, W, C)."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.view(b, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def relative_position_index(window: int) -> Tensor:
    """Swin's (w², w²) index into a ((2w−1)², heads) bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth per sample."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - p)
    return x * keep / (1 - p)


class WinCrossAttn(nn.Module):
    """Eqs. 5–7: Q = W_Q x_fl; K, V = W_K X, W_V X; A = softmax(QKᵀ/√d + b); O = W_O (A V)."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.empty((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("rel_index", relative_position_index(window), persistent=False)

    def position_bias(self) -> Tensor:
        m = self.window * self.window
        return self.bias_table[self.rel_index.view(-1)].view(m, m, self.heads).permute(2, 0, 1)

    def forward(self, image_windows: Tensor, landmark_query: Tensor) -> Tensor:
        """image_windows (B·nW, M, D); landmark_query (B, M, D) shared over the nW windows."""
        bw, m, d = image_windows.shape
        n_win = bw // landmark_query.shape[0]
        h, dh = self.heads, d // self.heads
        q = self.q(landmark_query).repeat_interleave(n_win, dim=0).view(bw, m, h, dh).transpose(1, 2)
        k, v = self.kv(image_windows).view(bw, m, 2, h, dh).permute(2, 0, 3, 1, 4)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale + self.position_bias()[None], dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(bw, m, d)
        return self.proj(out)


class DLBlock(nn.Module):
    """Eqs. 8–9: X' = X + γ1·MHCA(LN X, x_fl); X'' = X' + γ2·MLP(LN X')."""

    def __init__(self, dim: int, heads: int, window: int, mlp_ratio: float = 4.0, layer_scale: float = 1e-5,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.window = window
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WinCrossAttn(dim, heads, window)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))
        self.gamma1 = nn.Parameter(torch.full((dim,), layer_scale))
        self.gamma2 = nn.Parameter(torch.full((dim,), layer_scale))
        self.drop_path = drop_path

    def forward(self, image: Tensor, landmarks: Tensor) -> Tensor:
        """image (B, D, H, W), landmarks (B, D, h, w) → O (B, D, H, W)."""
        _b, _d, h, w = image.shape
        x = image.permute(0, 2, 3, 1)
        query = F.adaptive_avg_pool2d(landmarks, self.window).flatten(2).transpose(1, 2)
        windows = window_partition(self.norm1(x), self.window)
        o = window_merge(self.attn(windows, query), self.window, h, w)
        x = x + drop_path(self.gamma1 * o, self.drop_path, self.training)
        x = x + drop_path(self.gamma2 * self.mlp(self.norm2(x)), self.drop_path, self.training)
        return x.permute(0, 3, 1, 2)


class DLNet(nn.ModuleList):
    """One DLBlock per scale: (F1, F2, F3) + (L1, L2, L3) → (O1, O2, O3)."""

    def __init__(self, dims=(64, 128, 256), heads=(2, 4, 8), windows=(28, 14, 7), mlp_ratio: float = 4.0,
                 layer_scale: float = 1e-5, drop_paths=(0.0, 0.125, 0.25)) -> None:
        super().__init__(
            DLBlock(d, h, w, mlp_ratio, layer_scale, p) for d, h, w, p in zip(dims, heads, windows, drop_paths)
        )

    def forward(self, feats, landmarks):  # type: ignore[override]
        return tuple(block(f, lm) for block, f, lm in zip(self, feats, landmarks))
