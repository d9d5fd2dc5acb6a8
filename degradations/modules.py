"""Thin ``nn.Module`` wrappers over the functional ops (parameters come in per call)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from degradations.exposure import adjust_exposure
from degradations.noise import poisson_gaussian_noise
from degradations.numerics import NUMERICS
from degradations.pipeline import PipelineOptions, degrade, wb_matrices
from degradations.tone import highlights_shadows
from degradations.white_balance import apply_matrix


class Exposure(nn.Module):
    """Linear-light exposure: ``forward(lin, ev)`` with ``ev`` ``(B,)`` in stops."""

    def __init__(self, mode: str = "gain") -> None:
        super().__init__()
        self.mode = mode

    def forward(self, lin: torch.Tensor, ev: torch.Tensor) -> torch.Tensor:
        return adjust_exposure(lin, ev, mode=self.mode)


class WhiteBalance(nn.Module):
    """``forward(lin, params)``: params holds ``(B,)`` tensors ``d_temp``/``d_tint`` (incremental)
    or ``temperature_k``/``tint`` (absolute). Grey input passes through."""

    def __init__(self, options: PipelineOptions | None = None) -> None:
        super().__init__()
        self.options = options or PipelineOptions()

    def forward(self, lin: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        if lin.shape[1] == 1:
            return lin
        return apply_matrix(lin, wb_matrices(params, self.options, lin))


class HighlightsShadows(nn.Module):
    """``forward(lin, highlights, shadows)`` with sliders ``(B,)`` in -100..100."""

    def __init__(self, radius_frac: float = 0.05, halo: bool = True, gain_ev: float = 1.5) -> None:
        super().__init__()
        self.radius_frac, self.halo, self.gain_ev = radius_frac, halo, gain_ev

    def forward(self, lin: torch.Tensor, highlights: torch.Tensor, shadows: torch.Tensor) -> torch.Tensor:
        return highlights_shadows(lin, highlights, shadows, radius_frac=self.radius_frac,
                                  halo=self.halo, gain_ev=self.gain_ev, num=NUMERICS.get("exact"))


class PoissonGaussianNoise(nn.Module):
    """``forward(lin, shot, read, eps, gains=None)``: heteroscedastic noise with given ``eps``."""

    def forward(self, lin: torch.Tensor, shot: torch.Tensor, read: torch.Tensor, eps: torch.Tensor,
                gains: torch.Tensor | None = None) -> torch.Tensor:
        return poisson_gaussian_noise(lin, shot, read, eps, gains)


class Degrade(nn.Module):
    """The whole float pipeline on sRGB images: ``forward(images, params)``; see
    :func:`degradations.pipeline.degrade`. Build from a preset with ``Degrade(preset.options)``."""

    def __init__(self, options: PipelineOptions | None = None) -> None:
        super().__init__()
        self.options = options or PipelineOptions()

    def forward(self, images: torch.Tensor,
                params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> torch.Tensor:
        return degrade(images, params, options=self.options)
