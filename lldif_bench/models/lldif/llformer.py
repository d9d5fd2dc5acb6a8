"""LLformer: DTNet(x | Z) ∥ DLNet(DTNet features, landmark features) → fusion ViT → head (note §1.1)."""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from lldif_bench.errors import UserError

from .config import LLDifConfig, grid_sizes, level1_side
from .dlnet import DLNet
from .dtnet import DTNet
from .fusion import FusionTransformer
from .landmark_trunk import LandmarkTrunk, load_trunk_weights, render_landmark_heatmaps

log = logging.getLogger(__name__)


class LLformer(nn.Module):
    """x (B,3,S,S), Z (B,C), landmarks (B,68,2) pixels → logits (B,K). Z modulates every DTBlock (Eq. 2)."""

    def __init__(self, cfg: LLDifConfig, num_classes: int) -> None:
        super().__init__()
        self.image_size = cfg.image_size
        self.z_norm = cfg.dtnet.z_norm
        dims = cfg.dlnet.dims
        d = cfg.dtnet
        self.dtnet = DTNet(cfg.image_size, cfg.epd_dim, d.widths, d.heads, d.enc_blocks, d.dec_blocks, dims,
                           d.ffn_factor, d.mod, d.stem_stride)
        self.use_landmarks = cfg.dlnet.enabled
        self.landmark_cfg = cfg.landmark
        self.heatmap_size = cfg.landmark.heatmap_size or level1_side(cfg)
        self.landmark_frozen = False
        if self.use_landmarks:
            self.landmark_trunk = LandmarkTrunk(dims)
            if cfg.landmark.weights:
                load_trunk_weights(self.landmark_trunk, cfg.landmark.weights)
                self.landmark_frozen = True
            windows = tuple(w or s for w, s in zip(cfg.dlnet.windows, grid_sizes(cfg)))
            self.dlnet = DLNet(dims, cfg.dlnet.heads, windows, cfg.dlnet.mlp_ratio,
                               cfg.dlnet.layer_scale, cfg.dlnet.drop_path)
        in_dims = [2 * c if self.use_landmarks else c for c in dims]
        f = cfg.fusion
        self.fusion = FusionTransformer(in_dims, grid_sizes(cfg), f.embed_dim, f.depth, f.heads, f.mlp_ratio, num_classes,
                                        init_std=f.init_std)

    def landmark_features(self, landmarks: Tensor | None, batch: int) -> tuple[Tensor, Tensor, Tensor]:
        if landmarks is None:
            raise UserError(
                "LLDif's DLNet needs 68-point landmarks (batch key 'landmarks', (B, 68, 2) pixels): build the "
                "dataset's landmark cache (lldif-bench landmarks) or set dlnet.enabled=false"
            )
        if landmarks.shape[0] != batch:
            raise ValueError(f"{landmarks.shape[0]} landmark sets for {batch} images")
        size = self.heatmap_size
        heatmaps = render_landmark_heatmaps(landmarks, self.image_size, size, self.landmark_cfg.sigma)
        return self.landmark_trunk(heatmaps.to(next(self.landmark_trunk.parameters()).dtype))

    def forward(self, x: Tensor, z: Tensor, landmarks: Tensor | None = None) -> Tensor:
        if self.z_norm:
            z = nn.functional.layer_norm(z.float(), z.shape[-1:])
        feats = self.dtnet(x, z.to(x.dtype))
        if self.use_landmarks:
            outs = self.dlnet(feats, self.landmark_features(landmarks, x.shape[0]))
            scales = [torch.cat([f, o], dim=1) for f, o in zip(feats, outs)]
        else:
            scales = list(feats)
        return self.fusion(scales)
