"""Prior networks: PNET_s1 (Eq. 1, cross-attention; note §1.4) and PNET_s2 (Eq. 15, DiffIR CPEN_S2; §1.9)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CrossAttentionBlock(nn.Module):
    """Q ← Q + MHCA(LN Q, LN V); Q ← Q + MLP(LN Q)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, q: Tensor, kv: Tensor) -> Tensor:
        kv = self.norm_kv(kv)
        q = q + self.attn(self.norm_q(q), kv, kv, need_weights=False)[0]
        return q + self.mlp(self.norm_mlp(q))


class PNetS1(nn.Module):
    """Eq. 1: Z = PNET_s1(F_l(x), I_e(x)) ∈ R^C from LA-CLIP image outputs and GT text embeddings.

    ``layout="text_queries"`` (default, A4): queries = [f_c^t, f_l^t, q1, q2], keys/values = [map tokens,
    f_c^l, f_l^l]. ``"image_queries"`` swaps the roles (queries = image set + 2 learned, KV = text).
    """

    TYPES = ("map", "f_c_img", "f_l_img", "f_c_txt", "f_l_txt")

    def __init__(self, map_dim: int, map_tokens: int, text_dim: int, epd_dim: int, dim: int = 256,
                 blocks: int = 2, heads: int = 4, layout: str = "text_queries") -> None:
        super().__init__()
        if layout not in ("text_queries", "image_queries"):
            raise ValueError(f"pnet_s1.layout must be text_queries or image_queries, got {layout!r}")
        self.layout = layout
        self.proj_map = nn.Linear(map_dim, dim)
        self.proj_text = nn.ModuleDict({k: nn.Linear(text_dim, dim) for k in self.TYPES[1:]})
        self.type_embed = nn.Parameter(torch.zeros(len(self.TYPES), dim))
        self.queries = nn.Parameter(torch.randn(2, dim) * 0.02)
        self.blocks = nn.ModuleList(CrossAttentionBlock(dim, heads) for _ in range(blocks))
        n_out = 4 if layout == "text_queries" else map_tokens + 4
        self.out = nn.Sequential(
            nn.Linear(n_out * dim, epd_dim), nn.LeakyReLU(0.1), nn.Linear(epd_dim, epd_dim), nn.LeakyReLU(0.1),
        )

    def _embed(self, kind: str, value: Tensor) -> Tensor:
        idx = self.TYPES.index(kind)
        proj = self.proj_map if kind == "map" else self.proj_text[kind]
        return proj(value) + self.type_embed[idx]

    def forward(self, image: dict[str, Tensor], text_caption: Tensor, text_label: Tensor) -> Tensor:
        b = text_caption.shape[0]
        image_set = torch.cat([
            self._embed("map", image["tokens"]),
            self._embed("f_c_img", image["f_c"])[:, None],
            self._embed("f_l_img", image["f_l"])[:, None],
        ], dim=1)
        text_set = torch.stack([self._embed("f_c_txt", text_caption), self._embed("f_l_txt", text_label)], dim=1)
        learned = self.queries[None].expand(b, -1, -1)
        if self.layout == "text_queries":
            q, kv = torch.cat([text_set, learned], 1), image_set
        else:
            q, kv = torch.cat([image_set, learned], 1), text_set
        for block in self.blocks:
            q = block(q, kv)
        return self.out(q.flatten(1))


class ResBlock(nn.Module):
    """[Conv3×3 – LeakyReLU(0.1) – Conv3×3] + identity (DiffIR common.ResBlock)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.LeakyReLU(0.1), nn.Conv2d(ch, ch, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class PNetS2(nn.Module):
    """Eq. 15: c = PNET_s2(x) ∈ R^C, label-free (PixelUnshuffle to a ``grid``² grid (28²), convs, GAP, MLP)."""

    def __init__(self, image_size: int, epd_dim: int, n_feats: int = 64, n_res: int = 5,
                 extra_dim: int = 0, grid: int = 28) -> None:
        super().__init__()
        r = image_size // grid
        n = n_feats
        self.body = nn.Sequential(
            nn.PixelUnshuffle(r), nn.Conv2d(3 * r * r, n, 3, 1, 1), nn.LeakyReLU(0.1),
            *[ResBlock(n) for _ in range(n_res)],
            nn.Conv2d(n, 2 * n, 3, 1, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(2 * n, 2 * n, 3, 1, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(2 * n, epd_dim, 3, 1, 1), nn.LeakyReLU(0.1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
        )
        self.mlp = nn.Sequential(nn.Linear(epd_dim + extra_dim, epd_dim), nn.LeakyReLU(0.1),
                                 nn.Linear(epd_dim, epd_dim), nn.LeakyReLU(0.1))

    def forward(self, x: Tensor, extra: Tensor | None = None) -> Tensor:
        h = self.body(x)
        if extra is not None:
            h = torch.cat([h, extra], dim=-1)
        return self.mlp(h)
