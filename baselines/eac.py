"""EAC — Erasing Attention Consistency (Zhang et al., ECCV 2022), ResNet-18 variant.

Two views per training sample: the (already augmented, randomly erased) image and its horizontal
flip, so the erased patch is mirrored too. Only the original view gets cross-entropy ("imbalanced
framework"); both give class activation maps CAM_k = Σ_c W_kc F_c from the layer4 map F and the
detached classifier weights W. Consistency = MSE(CAM(x), mirror(CAM(flip x))); total = CE + λ·MSE,
λ = 5. The official code mirrors with a flipped ``grid_sample`` grid (bilinear, align_corners) that
lands on pixel centres, i.e. exactly ``torch.flip`` along width, which is used here.

From scratch (no pretrained trunk) λ ramps up linearly over the first ``consistency_warmup`` training
steps (1,000 by default; 0, the paper's constant λ, when the trunk loads weights). Measured on the
demo's data (48 px, Adam 5e-4): a randomly initialised trunk is far from flip-equivariant, so at step 0
the consistency term (0.72, ×5) outweighed the CE (2.10) and gave the trunk a gradient ~8× CE's
(norm 73 vs 9); Adam's first, sign-like step overshot (consistency 0.72 → 24.9 after one step) and
the trunk settled on flip-symmetric features that carry no class: every prediction was the majority
class. A 200-step ramp made train accuracy follow ResNet-18's but left EAC 7.2 points below it at the
demo's budget once λ reached 5 (300 steps); with 1,000 steps it was 1.9 points below (README).
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
from .common import BaselineMethod, check, parse_options, recipe

# λ's linear warm-up (in training steps) when the trunk starts from scratch; see EAC's docstring.
SCRATCH_WARMUP = 1000


@dataclass(frozen=True)
class EACOptions:
    consistency_weight: float = 5.0  # λ
    consistency_warmup: int = -1     # steps over which λ ramps up linearly; -1: 1000 from scratch, 0 pretrained


def class_activation_maps(fmap: Tensor, weight: Tensor) -> Tensor:
    """``(B,C,h,w)`` features, ``(K,C)`` classifier weights (detached) → ``(B,K,h,w)`` CAMs."""
    return (fmap.unsqueeze(1) * weight.detach()[None, :, :, None, None]).sum(dim=2)


def flip_consistency_loss(cam: Tensor, cam_of_flipped: Tensor) -> Tensor:
    """MSE between the CAMs of x and the mirrored-back CAMs of flip(x): 0 when they correspond."""
    return F.mse_loss(cam, cam_of_flipped.flip(-1))


class EAC(BaselineMethod):
    """ResNet-18 + CE on the original view + flip-consistency of class activation maps."""

    def __init__(self, num_classes: int, pretrained: str | None, opts: EACOptions) -> None:
        super().__init__(num_classes)
        self.opts = opts
        self.trunk = build_trunk(pretrained)
        self.init_report = self.trunk.init_report
        self.fc = nn.Linear(512, num_classes)
        warmup = opts.consistency_warmup
        self.warmup = (0 if self.trunk.init_report is not None else SCRATCH_WARMUP) if warmup < 0 else warmup
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))  # training steps, for the ramp

    def consistency_scale(self) -> float:
        """λ's ramp factor in [0, 1] at the current training step (1 without a warm-up)."""
        return 1.0 if self.warmup == 0 else min(1.0, (int(self.steps_done) + 1) / self.warmup)

    def embed(self, images: Tensor, landmarks: Tensor | None = None) -> dict[str, Tensor]:
        out = self.trunk(images)
        return {"features": out.pooled, "logits": self.fc(out.pooled),
                "cam": class_activation_maps(out.last, self.fc.weight)}

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        out = self.embed(batch["image"])
        if self.training:
            out["cam_flipped"] = self.embed(batch["image"].flip(-1))["cam"]
        return out

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        ce = F.cross_entropy(outputs["logits"], batch["label"])
        if "cam_flipped" not in outputs:
            return ce, {"ce": float(ce.detach())}
        consistency = flip_consistency_loss(outputs["cam"], outputs["cam_flipped"])
        weight = self.opts.consistency_weight * self.consistency_scale()
        self.steps_done += 1
        return ce + weight * consistency, {
            "ce": float(ce.detach()), "flip_consistency": float(consistency.detach()), "lambda": weight}


@METHODS.register("eac", help="EAC: CE + flip-consistency of class activation maps, ResNet-18 (ECCV'22)")
def build(num_classes: int, *, num_train: int, pretrained: str | None = None, **config) -> EAC:
    opts = parse_options(EACOptions, config, "eac")
    check(opts.consistency_weight >= 0, f"eac: consistency_weight must be >= 0, got {opts.consistency_weight}")
    check(opts.consistency_warmup >= -1, f"eac: consistency_warmup must be >= 0 steps (or -1: automatic), "
                                         f"got {opts.consistency_warmup}")
    return EAC(num_classes, pretrained, opts)


build.DEFAULTS = recipe("adam", 2e-4, 1e-4, 60, 32, "exponential", {"gamma": 0.9},
                        notes="README FAQ lr for ResNet-18 (1e-4 with the ResNet-50 original)")
