"""DACL — Deep Attentive Center Loss (Farzaneh & Qi, WACV 2021), after the official code.

The flattened layer4 map (25,088 values at 224) feeds an attention MLP (→3,584 → BN → ReLU → 512 →
BN → ReLU → 64 → BN → tanh → Linear 64→2×512); a softmax over each of the 512 pairs keeps the second
entry: per-dimension weights a ∈ (0,1)^512. Sparse centre loss L_sc = ½ Σ_d a_d (x_d − c_{y,d})²,
batch mean, on the pooled 512-d feature x. Total = CE + λ·L_sc, λ = 0.01.

Centres follow the code's hand-written gradient, Δc_k = −Σ_{i: y_i = k} a_i ⊙ (x_i − c_k) / (1 + n_k),
and their own plain SGD with lr α = 0.5, independent of λ. Here they are a buffer that :meth:`loss`
updates in training mode (so the suite's single optimiser never sees them and checkpoints keep them).
Inputs other than 224 pool the layer4 map to the grid ``image_size`` implies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lldif_bench.methods import METHODS

from .backbone import build_trunk
from .common import (
    BaselineMethod,
    all_reduce_sum,
    check,
    feature_grid,
    parse_options,
    pool_to_grid,
    recipe,
)


@dataclass(frozen=True)
class DACLOptions:
    image_size: int = 224
    centre_weight: float = 0.01   # λ
    centre_lr: float = 0.5        # α


def sparse_centre_loss(features: Tensor, attention: Tensor, labels: Tensor, centres: Tensor) -> Tensor:
    """½ Σ_d a_d (x_d − c_{y,d})², averaged over the batch (centres treated as constants)."""
    diff = features - centres[labels].detach()
    return 0.5 * (attention * diff.pow(2)).sum(dim=1).mean()


def centre_update(features: Tensor, attention: Tensor, labels: Tensor, centres: Tensor) -> Tensor:
    """DACL's centre gradient: −Σ_{i∈k} a_i ⊙ (x_i − c_k) / (1 + n_k) for every class k."""
    diff = features - centres[labels]
    grad = torch.zeros_like(centres).index_add_(0, labels, -attention * diff)
    counts = torch.zeros(centres.shape[0], device=centres.device, dtype=centres.dtype)
    counts = counts.index_add_(0, labels, torch.ones_like(labels, dtype=centres.dtype))
    grad, counts = all_reduce_sum(grad, counts)  # every DDP rank applies the same global update
    return grad / (1 + counts[:, None])


class DACL(BaselineMethod):
    """ResNet-18 + attention-weighted (sparse) centre loss with its own centre update."""

    def __init__(self, num_classes: int, pretrained: str | None, opts: DACLOptions) -> None:
        super().__init__(num_classes)
        self.opts = opts
        self.trunk = build_trunk(pretrained)
        self.init_report = self.trunk.init_report
        self.grid = feature_grid(opts.image_size)
        width = 512 * self.grid * self.grid
        self.attention = nn.Sequential(
            nn.Linear(width, 3584), nn.BatchNorm1d(3584), nn.ReLU(),
            nn.Linear(3584, 512), nn.BatchNorm1d(512), nn.ReLU(),
            nn.Linear(512, 64), nn.BatchNorm1d(64), nn.Tanh())
        self.attention_heads = nn.Linear(64, 2 * 512)
        self.fc = nn.Linear(512, num_classes)
        self.register_buffer("centres", torch.randn(num_classes, 512))

    def embed(self, images: Tensor, landmarks: Tensor | None = None) -> dict[str, Tensor]:
        out = self.trunk(images)
        code = self.attention(pool_to_grid(out.last, self.grid).flatten(1))
        weights = self.attention_heads(code).view(-1, 512, 2).softmax(dim=-1)[..., 1]
        return {"features": out.pooled, "logits": self.fc(out.pooled), "attention": weights}

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        labels = batch["label"]
        ce = F.cross_entropy(outputs["logits"], labels)
        sc = sparse_centre_loss(outputs["features"], outputs["attention"], labels, self.centres)
        if self.training and torch.is_grad_enabled():
            with torch.no_grad():
                grad = centre_update(outputs["features"].float(), outputs["attention"].float(), labels,
                                     self.centres)
                self.centres.sub_(self.opts.centre_lr * grad)
        return ce + self.opts.centre_weight * sc, {"ce": float(ce.detach()), "sparse_centre": float(sc.detach()),
                                                   "attention_mean": float(outputs["attention"].detach().mean())}


@METHODS.register("dacl", help="DACL: CE + attention-weighted sparse centre loss (WACV'21)")
def build(num_classes: int, *, num_train: int, pretrained: str | None = None, **config) -> DACL:
    opts = parse_options(DACLOptions, config, "dacl")
    check(opts.image_size >= 32, f"dacl: image_size must be >= 32, got {opts.image_size}")
    check(opts.centre_weight >= 0 and opts.centre_lr >= 0, "dacl: centre_weight and centre_lr must be >= 0")
    return DACL(num_classes, pretrained, opts)


build.DEFAULTS = recipe("sgd", 0.01, 5e-4, 60, 64, "step", {"step_size": 20, "gamma": 0.1},
                        optimizer_params={"momentum": 0.9},
                        notes="centres: own SGD lr 0.5 inside loss(); paper normalises with RAF statistics")
