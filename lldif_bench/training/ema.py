"""Exponential moving average (EMA) of a model's trainable parameters, for evaluation and deployment.

``shadow ← d·shadow + (1 − d)·param`` after every optimiser step, with the warm-up
``d = min(decay, (1 + n) / (10 + n))`` after n updates (as TensorFlow's ``ExponentialMovingAverage``
with ``num_updates``), so that a short run is not evaluated on weights stuck near the stage's start.
Only the parameters trained in the stage are averaged; buffers (BatchNorm statistics) and frozen
parameters are used as they are. The harness turns it on with ``RunConfig.ema_decay``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn


def effective_decay(decay: float, updates: int) -> float:
    """The decay applied at update number ``updates`` (1-based): ``min(decay, (1 + n) / (10 + n))``."""
    return min(decay, (1 + updates) / (10 + updates))


class ParamEMA:
    """EMA of the named parameters of ``model`` that require grad when it is created."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.names = [name for name, p in model.named_parameters() if p.requires_grad]
        params = dict(model.named_parameters())
        self.shadow = {name: params[name].detach().clone().float() for name in self.names}

    def _params(self, model: nn.Module) -> list[Tensor]:
        params = dict(model.named_parameters())
        return [params[name] for name in self.names]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current parameters of ``model`` into the average (call after ``optimizer.step()``)."""
        self.updates += 1
        weight = 1.0 - effective_decay(self.decay, self.updates)
        current = [p.detach().float() for p in self._params(model)]
        torch._foreach_lerp_(list(self.shadow.values()), current, weight)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the averaged parameters of ``model`` with the average."""
        for p, name in zip(self._params(model), self.names):
            p.copy_(self.shadow[name].to(p.dtype))

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """Within the block, ``model`` holds the averaged parameters; the trained ones come back after."""
        params = self._params(model)
        backup = [p.detach().clone() for p in params]
        self.copy_to(model)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, saved in zip(params, backup):
                    p.copy_(saved)

    def raw_values(self, model: nn.Module) -> dict[str, Tensor]:
        """CPU copies of the trained (not averaged) values of the averaged parameters, for a resume."""
        return {name: p.detach().cpu().clone() for name, p in zip(self.names, self._params(model))}

    @torch.no_grad()
    def load_raw_values(self, model: nn.Module, values: Mapping[str, Tensor]) -> None:
        """Put values saved by :meth:`raw_values` back into ``model``."""
        params = dict(model.named_parameters())
        for name, value in values.items():
            params[name].copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        shadow = state["shadow"]
        if sorted(shadow) != sorted(self.names):
            missing = sorted(set(self.names) - set(shadow))[:5]
            extra = sorted(set(shadow) - set(self.names))[:5]
            raise ValueError(f"EMA state does not fit the model: missing {missing}, unexpected {extra}")
        self.updates = int(state["updates"])
        self.shadow = {name: shadow[name].detach().clone().float() for name in self.names}
