"""ResNet-18 with softmax cross-entropy: the plain baseline every method's module is measured against.

Trunk → global average pool → Linear 512→K → CE (DACL's README "softmax loss, resnet18": RAF 86.54 %).
Recipe: the RUL/EAC family (baselines.md §1, [REC]) so that each method's delta is its module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from lldif_bench.methods import METHODS

from .backbone import build_trunk
from .common import BaselineMethod, parse_options, recipe


@dataclass(frozen=True)
class ResNet18Options:
    dropout: float = 0.0


class ResNet18CE(BaselineMethod):
    """ResNet-18 trunk, pooled 512-d feature, linear classifier, cross-entropy."""

    lr_multipliers: ClassVar[dict[str, float]] = {"fc.": 10.0}  # head at 1e-3 when the trunk is at 1e-4 (baselines.md §1)

    def __init__(self, num_classes: int, pretrained: str | None = None, dropout: float = 0.0) -> None:
        super().__init__(num_classes)
        self.trunk = build_trunk(pretrained)
        self.init_report = self.trunk.init_report
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512, num_classes)

    def embed(self, images: Tensor, landmarks: Tensor | None = None) -> dict[str, Tensor]:
        feat = self.trunk(images).pooled
        return {"features": feat, "logits": self.fc(self.dropout(feat))}


@METHODS.register("resnet18", help="ResNet-18 + softmax cross-entropy (plain baseline, Fig. 6's [16])")
def build(num_classes: int, *, num_train: int, pretrained: str | None = None, **config) -> ResNet18CE:
    opts = parse_options(ResNet18Options, config, "resnet18")
    return ResNet18CE(num_classes, pretrained, dropout=opts.dropout)


build.DEFAULTS = recipe("adam", 1e-4, 1e-4, 60, 64, "exponential", {"gamma": 0.9},
                        notes="RUL/EAC-family recipe; fc at 10x lr via param_groups")
