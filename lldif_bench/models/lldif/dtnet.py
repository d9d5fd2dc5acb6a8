"""DTNet (note §1.5): a 3-level Restormer/DiffIR U-Net of DTBlocks modulated by the EPD Z.

DTBlock = F + DMNet(EPDMod(LN F, Z)); F + DGNet(EPDMod(LN F, Z)), where EPDMod is Eq. 2, DMNet is
Restormer's MDTA (Eq. 3, channel attention: the attention map is c×c per head) and DGNet is GDFN
(Eq. 4, plus the output 1×1 conv the paper omits). Convolutions carry no bias, as in [R][D].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def channel_layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Restormer WithBias LayerNorm over channels at every pixel of (B, C, H, W)."""
    return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), weight, bias, eps).permute(0, 3, 1, 2)


class ChannelLayerNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        return channel_layer_norm(x, self.weight, self.bias)


def epd_modulate(u: Tensor, scale: Tensor, shift: Tensor, mode: str = "pure") -> Tensor:
    """Eq. 2 on a normalised map u (B, C, H, W): scale ⊙ u + shift (``one_plus``: (1 + scale) ⊙ u + shift)."""
    scale, shift = scale[:, :, None, None], shift[:, :, None, None]
    if mode == "one_plus":
        scale = 1 + scale
    return u * scale + shift


class EPDMod(nn.Module):
    """Eq. 2: (W1 Z, W2 Z) = split(Linear_{C→2·dim}(Z)); F' = W1 Z ∘ LN(F) + W2 Z."""

    def __init__(self, epd_dim: int, dim: int, mode: str = "pure") -> None:
        super().__init__()
        if mode not in ("pure", "one_plus"):
            raise ValueError(f"dtnet.mod must be pure or one_plus, got {mode!r}")
        self.linear = nn.Linear(epd_dim, 2 * dim, bias=False)
        self.mode = mode

    def forward(self, u: Tensor, z: Tensor) -> Tensor:
        scale, shift = self.linear(z).chunk(2, dim=-1)
        return epd_modulate(u, scale, shift, self.mode)


def mdta_attention(q: Tensor, k: Tensor, temperature: Tensor) -> Tensor:
    """Eq. 3's map: softmax(normalize(q)·normalize(k)ᵀ · temp) over channels, (B, heads, c, c); fp32."""
    q = F.normalize(q.float(), dim=-1)
    k = F.normalize(k.float(), dim=-1)
    return torch.softmax(q @ k.transpose(-2, -1) * temperature.float(), dim=-1)


class DMNet(nn.Module):
    """Eq. 3 (Restormer MDTA): transposed self-attention across channels with per-head temperature."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dw = nn.Conv2d(dim * 3, dim * 3, 3, 1, 1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dw(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in (q, k, v))
        attn = mdta_attention(q, k, self.temperature)
        out = (attn.to(v.dtype) @ v).reshape(b, c, h, w)
        return self.project_out(out)


class DGNet(nn.Module):
    """Eq. 4 (Restormer GDFN): 1×1 conv → depthwise 3×3 → GELU(g1) ⊙ g2 → 1×1 conv."""

    def __init__(self, dim: int, factor: float = 2.66) -> None:
        super().__init__()
        hidden = int(dim * factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, 1, 1, groups=hidden * 2, bias=False)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        g1, g2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(g1) * g2)


class DTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, epd_dim: int, ffn_factor: float = 2.66, mod: str = "pure") -> None:
        super().__init__()
        self.norm1, self.norm2 = ChannelLayerNorm(dim), ChannelLayerNorm(dim)
        self.mod1, self.mod2 = EPDMod(epd_dim, dim, mod), EPDMod(epd_dim, dim, mod)
        self.attn = DMNet(dim, heads)
        self.ffn = DGNet(dim, ffn_factor)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        x = x + self.attn(self.mod1(self.norm1(x), z))
        return x + self.ffn(self.mod2(self.norm2(x), z))


class DTStage(nn.ModuleList):
    def __init__(self, n: int, dim: int, heads: int, epd_dim: int, ffn_factor: float, mod: str) -> None:
        super().__init__(DTBlock(dim, heads, epd_dim, ffn_factor, mod) for _ in range(n))

    def forward(self, x: Tensor, z: Tensor) -> Tensor:  # type: ignore[override]
        for block in self:
            x = block(x, z)
        return x


def downsample(n: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(n, n // 2, 3, 1, 1, bias=False), nn.PixelUnshuffle(2))


def upsample(n: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(n, n * 2, 3, 1, 1, bias=False), nn.PixelShuffle(2))


class DTNet(nn.Module):
    """x (B,3,S,S), Z (B,C) → F1 (D1@28²), F2 (D2@14²), F3 (D3@7²) for S = 112 or 224 (stem stride S/56);
    with another stem stride s the level-1 side is g = S/s and F1..F3 are g/2, g/4, ceil(g/8)."""

    def __init__(self, image_size: int, epd_dim: int, widths=(48, 96, 192), heads=(1, 2, 4),
                 enc_blocks=(2, 3, 4), dec_blocks=(3, 2), out_dims=(64, 128, 256), ffn_factor: float = 2.66,
                 mod: str = "pure", stem_stride: int = 0) -> None:
        super().__init__()
        s0 = stem_stride or image_size // 56
        w1, w2, w3 = widths
        stage = lambda n, dim, h: DTStage(n, dim, h, epd_dim, ffn_factor, mod)
        self.stem = nn.Sequential(nn.PixelUnshuffle(s0), nn.Conv2d(3 * s0 * s0, w1, 3, 1, 1, bias=False))
        self.enc1 = stage(enc_blocks[0], w1, heads[0])
        self.down12 = downsample(w1)
        self.enc2 = stage(enc_blocks[1], w2, heads[1])
        self.down23 = downsample(w2)
        self.enc3 = stage(enc_blocks[2], w3, heads[2])
        self.up32 = upsample(w3)
        self.reduce2 = nn.Conv2d(w3, w2, 1, bias=False)
        self.dec2 = stage(dec_blocks[0], w2, heads[1])
        self.up21 = upsample(w2)
        self.dec1 = stage(dec_blocks[1], w2, heads[0])  # concat E1 → 2·w1 = w2 channels, no reduction [R]
        self.align1 = nn.Conv2d(w2, out_dims[0], 3, 2, 1)
        self.align2 = nn.Conv2d(w2, out_dims[1], 3, 2, 1)
        self.align3 = nn.Conv2d(w3, out_dims[2], 3, 2, 1)

    def forward(self, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        e1 = self.enc1(self.stem(x), z)
        e2 = self.enc2(self.down12(e1), z)
        e3 = self.enc3(self.down23(e2), z)
        d2 = self.dec2(self.reduce2(torch.cat([self.up32(e3), e2], 1)), z)
        d1 = self.dec1(torch.cat([self.up21(d2), e1], 1), z)
        return self.align1(d1), self.align2(d2), self.align3(e3)
