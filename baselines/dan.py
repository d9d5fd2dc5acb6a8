"""DAN — Distract your Attention Network (Wen et al., Biomimetics 2023), after the official code.

- Feature clustering: affinity loss = squared distance of the pooled layer4 feature to its class
  centre, divided by the summed variance of the (learnable) centres across classes, batch mean.
- Multi-head cross attention: H = 4 heads, each a spatial attention (1×1 conv 512→256 + BN, then
  ReLU of 3×3 + 1×3 + 3×1 convs 256→512 with BN, summed over channels to one map that multiplies
  the input) followed by channel attention (GAP, Linear 512→32, BN, ReLU, Linear 32→512, sigmoid).
- Attention fusion: log-softmax across heads, sum, Linear 512→K, BatchNorm1d(K) on the logits.
  Partition loss = log(1 + H / σ²), σ² = variance across heads averaged over batch and dims.
- Total = CE + 1·affinity + 1·partition.

From scratch (no trunk weights loaded) and with a layer4 map that has extent (inputs > 32 px), two
parts of the head are changed (issue #18); with a loaded trunk, or a 1×1 map, the official
architecture is kept. Options ``spatial_norm`` / ``logit_bn`` override either way.

- ``spatial_norm``: each head's spatial map is divided by its per-image mean (a relative map, mean 1),
  instead of multiplying the features by the raw channel sum (≈ 370 at start, per-image coefficient
  of variation 0.29). On a 1×1 map the relative map is 1 everywhere and the heads identical, so a
  forced ``spatial_norm`` divides by the channel count there (the channel mean).
  Why a 1×1 map keeps the official head (measured 2026-12-08, 328 synthetic faces at 32 px, 7 classes,
  majority 39.0%, 100 steps of the demo recipe, train accuracy in eval mode): official head 98.5%;
  the from-scratch head (channel mean, no logit BatchNorm) 43.9% (total loss 10.9 → 4.7; with the
  partition weight 0: 56.1%, the affinity weight 0: 53.7%); raw sum without the logit BatchNorm
  85.1%; channel mean with it 26.5%. On the 4-class bars of the default learning test both heads
  learn (100% / 99.6%), which is why the bars never showed it.
- ``logit_bn``: no BatchNorm1d on the logits.

Why (measured on the demo's data, Adam 5e-4, 48 px, one head and no affinity/partition loss to isolate
the head; 2026-12-05): the raw map's per-image gain S_i grew from a coefficient of variation of 0.29 to
0.79 within 45 steps — even with the heads' learning rate at 0 (the trunk drives it) — so the fused
feature was dominated by one per-image scalar; the logits' spread across the batch (what the logit
BatchNorm divides by) grew 74 → 2,400, the gradient reaching the trunk fell 31 → 0.2–0.4 within
20 steps (ResNet-18: 9 → 3–5), and Adam's second-moment estimate, still holding the large step-0
gradients, cut the trunk's effective step ~30×: the CE stayed at 1.93 (above the class prior's 1.6)
and every run ended at the majority class. The logit BatchNorm also pins the logits at unit spread
and zero batch mean, and its affine parameters move only 5e-4 a step under Adam, so the class prior
and the temperature cannot be learnt in the demo's 300 steps. Normalised maps with the logit
BatchNorm kept still stalled (CE 1.92 at step 60); without the logit BatchNorm the raw maps made the
logits explode (CE 21 at step 0). Both changes together: CE 1.42 at step 60 (ResNet-18 1.31); the
demo-budget run (6 epochs, seed 0) gives 81.6% clear / 72.5% low-light against ResNet-18's 85.5 / 74.4
measured the same day (before: 38.25% clear, the majority class). Tried before without success:
partition weight 0, affinity and partition 0, one head, the map's mean instead of its sum, SGD 0.1
(the repo's RAF-DB recipe), Adam 1e-4, the fc and logit BatchNorm at 10× or 100× the learning rate.
With a pretrained trunk (the paper's setting: SGD, MS-Celeb trunk) none of this was measured here.
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
from .common import BaselineMethod, check, feature_grid, parse_options, recipe


@dataclass(frozen=True)
class DANOptions:
    num_heads: int = 4
    num_centres: int = 0          # 0 = num_classes (the RAF-DB script keeps 8 for 7 classes)
    affinity_weight: float = 1.0
    partition_weight: float = 1.0
    # From-scratch adaptations (None = automatic: on when the trunk is randomly initialised, off
    # when it loads weights, i.e. the official architecture); see the module docstring.
    spatial_norm: bool | None = None   # each head's spatial map divided by its per-image mean
    logit_bn: bool | None = None       # BatchNorm1d on the logits (official)
    image_size: int = 224              # input side: a 1×1 layer4 map (≤ 32 px) keeps the official head


def affinity_loss(features: Tensor, labels: Tensor, centres: Tensor) -> Tensor:
    """Mean ‖x_i − c_{y_i}‖² divided by the total variance of the centres (Σ_d var_k c_kd)."""
    dist = (features - centres[labels]).pow(2).sum(dim=1).clamp(1e-12, 1e12)
    return dist.mean() / centres.var(dim=0).sum()


def partition_loss(heads: Tensor) -> Tensor:
    """``(B, H, D)`` head outputs → log(1 + H / mean variance across heads); 0 for one head."""
    if heads.shape[1] < 2:
        return heads.sum() * 0
    return torch.log1p(heads.shape[1] / heads.var(dim=1).mean())


class SpatialAttention(nn.Module):
    def __init__(self, channels: int = 512, reduced: int = 256, normalize: bool = False) -> None:
        super().__init__()
        self.normalize = normalize
        self.reduce = nn.Sequential(nn.Conv2d(channels, reduced, 1), nn.BatchNorm2d(reduced))
        self.conv_3x3 = nn.Sequential(nn.Conv2d(reduced, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.conv_1x3 = nn.Sequential(nn.Conv2d(reduced, channels, (1, 3), padding=(0, 1)),
                                      nn.BatchNorm2d(channels))
        self.conv_3x1 = nn.Sequential(nn.Conv2d(reduced, channels, (3, 1), padding=(1, 0)),
                                      nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        y = self.reduce(x)
        y = F.relu(self.conv_3x3(y) + self.conv_1x3(y) + self.conv_3x1(y)).sum(dim=1, keepdim=True)
        if self.normalize:  # from scratch (issue #18, module docstring)
            if y.shape[-2:].numel() > 1:
                y = y / y.mean(dim=(2, 3), keepdim=True).clamp_min(1e-6)   # relative map, mean 1 per image
            else:
                y = y / x.shape[1]  # a 1×1 map (inputs ≤ 32 px) has no extent: channel mean, not sum
        return x * y


class ChannelAttention(nn.Module):
    def __init__(self, channels: int = 512, reduced: int = 32) -> None:
        super().__init__()
        self.attention = nn.Sequential(nn.Linear(channels, reduced), nn.BatchNorm1d(reduced), nn.ReLU(),
                                       nn.Linear(reduced, channels), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        pooled = x.mean(dim=(2, 3))
        return pooled * self.attention(pooled)


def init_head_weights(head: nn.Module) -> None:
    """The official heads' initialisation: convs Kaiming-normal (fan-out), BN 1/0, Linears N(0, 0.001²),
    biases 0. The tiny Linears make each channel gate start at sigmoid(0) = 0.5 for every head."""
    for m in head.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.001)
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d)) and m.bias is not None:
            nn.init.zeros_(m.bias)


class CrossAttentionHead(nn.Module):
    """Spatial then channel attention → one 512-d vector per sample."""

    def __init__(self, spatial_norm: bool = False) -> None:
        super().__init__()
        self.spatial = SpatialAttention(normalize=spatial_norm)
        self.channel = ChannelAttention()
        init_head_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.channel(self.spatial(x))


class DAN(BaselineMethod):
    """ResNet-18 + affinity-clustered features + H attention heads with a partition loss."""

    def __init__(self, num_classes: int, pretrained: str | None, opts: DANOptions) -> None:
        super().__init__(num_classes)
        self.opts = opts
        self.trunk = build_trunk(pretrained)
        self.init_report = self.trunk.init_report
        # the from-scratch head only where the layer4 map has extent (module docstring)
        scratch = self.trunk.init_report is None and feature_grid(opts.image_size) > 1
        self.spatial_norm = scratch if opts.spatial_norm is None else opts.spatial_norm
        self.logit_bn = (not scratch) if opts.logit_bn is None else opts.logit_bn
        self.heads = nn.ModuleList(CrossAttentionHead(self.spatial_norm) for _ in range(opts.num_heads))
        self.fc = nn.Linear(512, num_classes)
        self.bn = nn.BatchNorm1d(num_classes) if self.logit_bn else nn.Identity()
        self.centres = nn.Parameter(torch.randn(opts.num_centres or num_classes, 512))

    def embed(self, images: Tensor, landmarks: Tensor | None = None) -> dict[str, Tensor]:
        out = self.trunk(images)
        heads = torch.stack([head(out.last) for head in self.heads], dim=1)  # (B, H, 512)
        if heads.shape[1] > 1:
            heads = F.log_softmax(heads, dim=1)
        fused = heads.sum(dim=1)
        return {"features": fused, "logits": self.bn(self.fc(fused)), "heads": heads, "pooled": out.pooled}

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        ce = F.cross_entropy(outputs["logits"], batch["label"])
        aff = affinity_loss(outputs["pooled"], batch["label"], self.centres)
        part = partition_loss(outputs["heads"])
        total = ce + self.opts.affinity_weight * aff + self.opts.partition_weight * part
        return total, {"ce": float(ce.detach()), "affinity": float(aff.detach()),
                       "partition": float(part.detach())}


@METHODS.register("dan", help="DAN: affinity-loss clustering + 4 cross-attention heads, partition loss")
def build(num_classes: int, *, num_train: int, pretrained: str | None = None, **config) -> DAN:
    opts = parse_options(DANOptions, config, "dan")
    check(opts.num_heads >= 1, f"dan: num_heads must be >= 1, got {opts.num_heads}")
    check(opts.num_centres == 0 or opts.num_centres >= num_classes,
          f"dan: num_centres must be 0 (= num_classes) or >= {num_classes}, got {opts.num_centres}")
    return DAN(num_classes, pretrained, opts)


build.DEFAULTS = recipe("sgd", 0.1, 1e-4, 40, 256, "step", {"step_size": 10, "gamma": 0.1},
                        optimizer_params={"momentum": 0.9}, notes="RAF-DB script recipe")
