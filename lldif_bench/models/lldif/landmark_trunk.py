"""Landmark features X_fl for DLNet: 68 Gaussian heatmaps → a small strided CNN → three scales.

Heatmaps come from :func:`lldif_bench.landmarks.heatmaps.render_heatmaps` at ``heatmap_size``²
(default 56); the trunk gives L1 (D1@28²), L2 (D2@14²), L3 (D3@7²), the shapes DLNet needs. A
pretrained trunk loads from a path (safetensors or a torch state dict) and is then frozen.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from lldif_bench.errors import UserError

log = logging.getLogger(__name__)
NUM_POINTS = 68


def conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LandmarkTrunk(nn.Module):
    """(B, 68, h, h) heatmaps with h = 56 → (L1, L2, L3); each scale is conv-s2 + conv."""

    def __init__(self, dims=(64, 128, 256), in_ch: int = NUM_POINTS) -> None:
        super().__init__()
        d1, d2, d3 = dims
        self.scale1 = nn.Sequential(conv_bn(in_ch, d1, 2), conv_bn(d1, d1, 1))
        self.scale2 = nn.Sequential(conv_bn(d1, d2, 2), conv_bn(d2, d2, 1))
        self.scale3 = nn.Sequential(conv_bn(d2, d3, 2), nn.Conv2d(d3, d3, 3, 1, 1))

    def forward(self, heatmaps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        l1 = self.scale1(heatmaps)
        l2 = self.scale2(l1)
        return l1, l2, self.scale3(l2)


def render_landmark_heatmaps(points: Tensor, image_size: int, heatmap_size: int, sigma: float) -> Tensor:
    """(B, 68, 2) pixel coordinates in the S×S input → (B, 68, h, h) Gaussian heatmaps."""
    from lldif_bench.landmarks.heatmaps import render_heatmaps

    if points.dim() != 3 or points.shape[1:] != (NUM_POINTS, 2):
        raise UserError(f"LLDif expects landmarks of shape (B, 68, 2), got {tuple(points.shape)}")
    return render_heatmaps(points.float(), (image_size, image_size), (heatmap_size, heatmap_size), sigma)


def load_trunk_weights(trunk: LandmarkTrunk, path: str | Path) -> None:
    """Load a pretrained trunk (keys with or without a ``module.``/``trunk.`` prefix) and freeze it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"landmark trunk weights {str(path)!r} not found (landmark.weights)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    cleaned = {}
    for key, value in state.items():
        for prefix in ("module.", "trunk.", "landmark_trunk."):
            key = key.removeprefix(prefix)
        cleaned[key] = value
    own = trunk.state_dict()
    matched = [k for k in own if k in cleaned and cleaned[k].shape == own[k].shape]
    if len(matched) < 0.95 * len(own):
        raise UserError(
            f"{path} matches only {len(matched)}/{len(own)} landmark-trunk tensors; is it a LandmarkTrunk checkpoint?"
        )
    trunk.load_state_dict({k: cleaned[k] for k in matched}, strict=False)
    for p in trunk.parameters():
        p.requires_grad_(False)
    log.info("loaded landmark trunk from %s (%d tensors), frozen", path, len(matched))
