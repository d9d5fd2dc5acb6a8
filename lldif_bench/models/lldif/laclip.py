"""LA-CLIP image tower F_l with caption and label heads (note §1.3), and the luminance bucket.

The trunk is a from-scratch torchvision ResNet-18 (no CLIP weights exist offline) or, for the tiny
test preset, a 3-conv CNN. Heads map the pooled feature into the text-embedding space (d_t).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LOGIT_SCALE_INIT = math.log(1 / 0.07)
LOGIT_SCALE_MAX = math.log(100.0)


def resnet18_trunk() -> nn.Module:
    net = torchvision.models.resnet18(weights=None)
    return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)


def small_cnn_trunk(width: int) -> nn.Module:
    """Three stride-2 convs and a pool to 4×4 (the ResNet-18 grid at 112 px)."""
    w = width
    return nn.Sequential(
        nn.Conv2d(3, w // 2, 3, 2, 1), nn.BatchNorm2d(w // 2), nn.ReLU(inplace=True),
        nn.Conv2d(w // 2, w, 3, 2, 1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        nn.Conv2d(w, w, 3, 2, 1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(4),
    )


TRUNKS = {"resnet18": lambda width: resnet18_trunk(), "small_cnn": small_cnn_trunk}


class LAClipImage(nn.Module):
    """F_l: image → map tokens (B, N_v, width), f_c^l and f_l^l (each (B, d_t), unit norm)."""

    def __init__(self, text_dim: int, trunk: str = "resnet18", width: int = 512) -> None:
        super().__init__()
        if trunk == "resnet18":
            width = 512
        self.width = width
        self.trunk = TRUNKS[trunk](width)
        self.head_c = nn.Linear(width, text_dim)
        self.head_l = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, text_dim))
        self.log_scale_c = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))
        self.log_scale_l = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        fmap = self.trunk(x)
        tokens = fmap.flatten(2).transpose(1, 2)
        pooled = fmap.mean(dim=(2, 3)).float()
        with torch.autocast(device_type=x.device.type, enabled=False):
            f_c = F.normalize(self.head_c(pooled), dim=-1)
            f_l = F.normalize(self.head_l(pooled), dim=-1)
        return {"tokens": tokens, "f_c": f_c, "f_l": f_l}

    def scales(self) -> tuple[Tensor, Tensor]:
        """exp(s_c), exp(s_l), clamped at 100 as in CLIP."""
        return (self.log_scale_c.clamp(max=LOGIT_SCALE_MAX).exp(), self.log_scale_l.clamp(max=LOGIT_SCALE_MAX).exp())


def mean_luma(images: Tensor) -> Tensor:
    """Mean BT.601 luma in [0, 1] of ImageNet-normalised images (B,3,H,W) → (B,)."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rgb = (images.float() * std + mean).clamp(0, 1)
    weights = rgb.new_tensor((0.299, 0.587, 0.114)).view(1, 3, 1, 1)
    return (rgb * weights).sum(1).mean(dim=(1, 2))


class LuminanceBuckets(nn.Module):
    """Tertile thresholds of training-set mean luma, estimated from a 256-bin histogram (note §4).

    The histogram fills while ``update`` is called (stage-0 training, or any training step before
    ``min_count`` images were seen); thresholds live in the state dict, so later stages reuse them.
    """

    BINS = 256

    def __init__(self, min_count: int = 256) -> None:
        super().__init__()
        self.min_count = min_count
        self.register_buffer("histogram", torch.zeros(self.BINS, dtype=torch.float64))

    def update(self, luma: Tensor) -> None:
        idx = (luma.detach().clamp(0, 1) * (self.BINS - 1)).round().long().cpu()
        self.histogram += torch.bincount(idx, minlength=self.BINS).to(self.histogram)

    @property
    def count(self) -> int:
        return int(self.histogram.sum().item())

    def thresholds(self) -> Tensor:
        """Luma values at the 1/3 and 2/3 quantiles (defaults when nothing was seen yet)."""
        hist = self.histogram.detach().cpu()
        if float(hist.sum()) == 0:
            return torch.tensor([1 / 3, 2 / 3])
        cdf = hist.cumsum(0) / hist.sum()
        centres = torch.arange(self.BINS, dtype=torch.float64) / (self.BINS - 1)
        out = [centres[int(torch.searchsorted(cdf, torch.tensor(q, dtype=torch.float64)))] for q in (1 / 3, 2 / 3)]
        return torch.stack(out).float()

    def forward(self, luma: Tensor) -> Tensor:
        """Bucket 0 (extremely dark) / 1 (very dark) / 2 (dim) per image."""
        return torch.bucketize(luma.float().cpu(), self.thresholds(), right=True).to(luma.device)
