"""MA-Net — global Multi-scale and local Attention network (Zhao et al., TIP 2021), after the code.

- Shared stem: ResNet-18 conv1 … layer2 (128×28×28 at 224).
- Local attention branch: the layer2 map is cut into four quadrants (14×14 at 224; uneven halves
  for odd sizes); each quadrant has its own layer3 (stride 2) and layer4 (stride 1), one residual
  block each with CBAM (channel gate: shared MLP, reduction 16, on avg- and max-pooled vectors;
  spatial gate: 7×7 conv on the channel max and mean). The four outputs are re-assembled, pooled and
  classified by ``fc_local``.
- Global multi-scale branch: layer3 and layer4 (stride 2, two blocks each) of multi-scale blocks: after
  a 3×3 conv the channels are split into 4 groups processed hierarchically in a forward and a reverse
  chain (Res2Net-like), the two results summed, plus the residual; pooled, ``fc_global``.
- Loss = 0.6·CE(local) + 0.4·CE(global); prediction = 0.6·logits_local + 0.4·logits_global.
A ``--pretrained`` ResNet-18 file initialises the shared stem (conv1 … layer2); both branches start
from Kaiming init (MA-Net's own whole-network MS-Celeb file is not read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lldif_bench.errors import UserError
from lldif_bench.methods import METHODS

from .backbone import build_trunk
from .common import BaselineMethod, check, parse_options, recipe


@dataclass(frozen=True)
class MANetOptions:
    beta: float = 0.6   # weight of the local branch


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def downsample(cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


class CBAM(nn.Module):
    """Channel gate (shared MLP on avg/max pooled vectors) then spatial gate (7×7 conv on max/mean)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                                 nn.Linear(channels // reduction, channels))
        self.spatial = nn.Sequential(nn.Conv2d(2, 1, 7, padding=3, bias=False), nn.BatchNorm2d(1))

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3))))
        x = x * gate[:, :, None, None]
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class AttentionBlock(nn.Module):
    """A ResNet basic block whose residual branch passes through CBAM before the addition."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.cbam = CBAM(cout)
        self.downsample = downsample(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.cbam(out) + identity)


class MultiScaleBlock(nn.Module):
    """3×3 conv, then 4 channel groups through a forward and a reverse hierarchical chain, summed."""

    def __init__(self, cin: int, cout: int, stride: int, scales: int = 4) -> None:
        super().__init__()
        self.width = cout // scales
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.forward_chain = nn.ModuleList(
            nn.Sequential(conv3x3(self.width, self.width), nn.BatchNorm2d(self.width), nn.ReLU())
            for _ in range(scales))
        self.reverse_chain = nn.ModuleList(
            nn.Sequential(conv3x3(self.width, self.width), nn.BatchNorm2d(self.width), nn.ReLU())
            for _ in range(scales))
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = downsample(cin, cout, stride)

    @staticmethod
    def _chain(groups: tuple[Tensor, ...], convs: nn.ModuleList) -> list[Tensor]:
        outs, previous = [], None
        for group, conv in zip(groups, convs):
            previous = conv(group if previous is None else group + previous)
            outs.append(previous)
        return outs

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        groups = torch.split(out, self.width, dim=1)
        forward_out = self._chain(groups, self.forward_chain)
        reverse_out = self._chain(groups[::-1], self.reverse_chain)[::-1]
        out = self.bn2(torch.cat(forward_out, dim=1) + torch.cat(reverse_out, dim=1))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


def quadrants(x: Tensor) -> list[Tensor]:
    """Top-left, top-right, bottom-left, bottom-right parts of a ``(B,C,H,W)`` map."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    return [x[..., :h, :w], x[..., :h, w:], x[..., h:, :w], x[..., h:, w:]]


def assemble(parts: list[Tensor]) -> Tensor:
    """Inverse of :func:`quadrants` for the branch outputs."""
    return torch.cat([torch.cat(parts[:2], dim=-1), torch.cat(parts[2:], dim=-1)], dim=-2)


class MANet(BaselineMethod):
    """Shared ResNet-18 stem, 4-quadrant CBAM local branch + multi-scale global branch, fused."""

    def __init__(self, num_classes: int, pretrained: str | None, opts: MANetOptions) -> None:
        super().__init__(num_classes)
        self.beta = opts.beta
        self.stem = build_trunk(pretrained, num_stages=2)
        self.init_report = self.stem.init_report
        self.local_branches = nn.ModuleList(
            nn.Sequential(AttentionBlock(128, 256, 2), AttentionBlock(256, 512, 1)) for _ in range(4))
        self.global_branch = nn.Sequential(
            MultiScaleBlock(128, 256, 2), MultiScaleBlock(256, 256, 1),
            MultiScaleBlock(256, 512, 2), MultiScaleBlock(512, 512, 1))
        self.fc_local = nn.Linear(512, num_classes)
        self.fc_global = nn.Linear(512, num_classes)
        for name, m in self.named_modules():
            if name.startswith(("local_branches", "global_branch")) and isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def embed(self, images: Tensor, landmarks: Tensor | None = None) -> dict[str, Tensor]:
        shared = self.stem(images).last
        if min(shared.shape[-2:]) < 2:
            raise UserError(f"manet: images of {tuple(images.shape[-2:])} px give a {tuple(shared.shape[-2:])} "
                            "layer2 map, too small to cut into quadrants; use images of at least 16 px")
        local = assemble([branch(part) for branch, part in zip(self.local_branches, quadrants(shared))])
        local_feat = local.mean(dim=(2, 3))
        global_feat = self.global_branch(shared).mean(dim=(2, 3))
        logits_local, logits_global = self.fc_local(local_feat), self.fc_global(global_feat)
        return {"features": torch.cat([local_feat, global_feat], dim=1),
                "logits": self.beta * logits_local + (1 - self.beta) * logits_global,
                "logits_local": logits_local, "logits_global": logits_global}

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        ce_local = F.cross_entropy(outputs["logits_local"], batch["label"])
        ce_global = F.cross_entropy(outputs["logits_global"], batch["label"])
        return self.beta * ce_local + (1 - self.beta) * ce_global, {
            "ce_local": float(ce_local.detach()), "ce_global": float(ce_global.detach())}


@METHODS.register("manet", help="MA-Net: 4-quadrant CBAM local branch + multi-scale global branch (TIP'21)")
def build(num_classes: int, *, num_train: int, pretrained: str | None = None, **config) -> MANet:
    opts = parse_options(MANetOptions, config, "manet")
    check(0 <= opts.beta <= 1, f"manet: beta must be in [0, 1], got {opts.beta}")
    return MANet(num_classes, pretrained, opts)


build.DEFAULTS = recipe("sgd", 0.01, 1e-4, 100, 128, "step", {"step_size": 15, "gamma": 0.1},
                        optimizer_params={"momentum": 0.9},
                        notes="official code feeds unnormalised [0,1] images; the suite normalises")
