"""Optimiser and learning-rate-schedule registries (schedules step once per epoch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from lldif_bench.errors import UserError
from lldif_bench.registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
SCHEDULERS: Registry[Callable[..., Any]] = Registry("scheduler")


@OPTIMIZERS.register("adam", help="Adam with coupled L2 weight decay (the paper's optimiser)")
def _adam(groups, lr: float, weight_decay: float, **params) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, **params)


@OPTIMIZERS.register("adamw", help="AdamW (decoupled weight decay)")
def _adamw(groups, lr: float, weight_decay: float, **params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, **params)


@OPTIMIZERS.register("sgd", help="SGD with momentum 0.9 unless optimizer_params say otherwise")
def _sgd(groups, lr: float, weight_decay: float, **params) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=lr, weight_decay=weight_decay, **{"momentum": 0.9, **params})


@SCHEDULERS.register("none", help="constant learning rate")
def _constant(optimizer, epochs: int, **params):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


@SCHEDULERS.register("exponential", help="ExponentialLR(gamma) per epoch")
def _exponential(optimizer, epochs: int, gamma: float = 0.9):
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=float(gamma))


@SCHEDULERS.register("cosine", help="CosineAnnealingLR over the run's epochs")
def _cosine(optimizer, epochs: int, eta_min: float = 0.0):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs), eta_min=float(eta_min))


@SCHEDULERS.register("step", help="StepLR(step_size, gamma)")
def _step(optimizer, epochs: int, step_size: int = 30, gamma: float = 0.1):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(step_size), gamma=float(gamma))


@SCHEDULERS.register("multistep", help="MultiStepLR(milestones, gamma)")
def _multistep(optimizer, epochs: int, milestones=(30, 60), gamma: float = 0.1):
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=float(gamma))


def build_optimizer(name: str, groups: list[dict], lr: float, weight_decay: float,
                    params: dict) -> torch.optim.Optimizer:
    try:
        return OPTIMIZERS.get(name)(groups, lr=lr, weight_decay=weight_decay, **params)
    except TypeError as err:
        raise UserError(f"optimizer {name!r}: bad optimizer_params {params}: {err}") from None


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, epochs: int, params: dict):
    try:
        return SCHEDULERS.get(name)(optimizer, epochs, **params)
    except TypeError as err:
        raise UserError(f"scheduler {name!r}: bad scheduler_params {params}: {err}") from None
