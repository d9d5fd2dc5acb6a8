"""Multi-scale fusion (x_i = Concat(F_i, O_i)), Eq. 10 tokens, fusion ViT (Eqs. 11–12) and the SE head."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class FuseScale(nn.Module):
    """(B, cin, H, H) → log2(H/7) × [Conv3×3 s2 + GELU] → Conv1×1 → (B, 49, E); maps of 7 or less
    (the `cpu` preset's 4² F3) are not downsampled: (B, H², E)."""

    def __init__(self, cin: int, embed_dim: int, size: int) -> None:
        super().__init__()
        n_down = max(0, round(math.log2(size / 7)))
        self.n_tokens = (size // 2 ** n_down) ** 2 if n_down else size * size
        layers: list[nn.Module] = []
        for _ in range(n_down):
            layers += [nn.Conv2d(cin, cin, 3, 2, 1), nn.GELU()]
        layers.append(nn.Conv2d(cin, embed_dim, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).flatten(2).transpose(1, 2)


class ViTBlock(nn.Module):
    """Eqs. 11–12 with pre-LN: X ← X + MSA(LN X); X ← X + MLP(LN X)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def attention(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Head(nn.Module):
    """LN → cls token → SE gate y ⊙ σ(W2 ReLU(W1 y)) → Linear(E, K)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.se = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim), nn.Sigmoid())
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, tokens: Tensor) -> Tensor:
        y = self.norm(tokens)[:, 0]
        return self.fc(y * self.se(y))


class FusionTransformer(nn.Module):
    """x_1..x_3 → tokens (B, 147, E) → [cls] + pos (B, 148, E) → ViT blocks → Head → logits (B, K)."""

    def __init__(self, in_dims, sizes, embed_dim: int, depth: int, heads: int, mlp_ratio: float,
                 num_classes: int, init_std: float = 0.01) -> None:
        super().__init__()
        self.tokenizers = nn.ModuleList(FuseScale(c, embed_dim, s) for c, s in zip(in_dims, sizes))
        n_tokens = sum(tok.n_tokens for tok in self.tokenizers)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_tokens + 1, embed_dim))
        self.blocks = nn.Sequential(*[ViTBlock(embed_dim, heads, mlp_ratio) for _ in range(depth)])
        self.head = Head(embed_dim, num_classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for module in [*self.blocks.modules(), *self.head.modules()]:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=init_std)
                nn.init.zeros_(module.bias)

    def tokens(self, scales) -> Tensor:
        """Eq. 10: X = [x1, x2, x3] with the cls token and positional embedding."""
        x = torch.cat([tok(s) for tok, s in zip(self.tokenizers, scales)], dim=1)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.pos_embed

    def forward(self, scales) -> Tensor:
        return self.head(self.blocks(self.tokens(scales)))
