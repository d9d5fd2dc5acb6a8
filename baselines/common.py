"""What every baseline shares: the method base class, option parsing, recipes, DDP-safe state.

A baseline subclasses :class:`BaselineMethod` and implements ``embed(images, landmarks)`` (the
penultimate feature plus whatever its loss needs), ``head`` logic in ``forward`` and its own
``loss``. ``predict`` and ``features`` come for free and never touch a label.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lldif_bench.errors import UserError

from .backbone import LoadReport

# Keys of the suite-level recipe; a builder ignores them when the harness passes its whole config.
RECIPE_KEYS = frozenset({
    "optimizer", "optimizer_params", "lr", "weight_decay", "epochs", "batch_size", "scheduler",
    "scheduler_params", "image_size", "recipe", "notes",
})

O = TypeVar("O")


def parse_options(options_type: type[O], config: Mapping[str, Any], method: str) -> O:
    """Build a method's options dataclass from ``config``; unknown keys are a clear error.

    Suite recipe keys (:data:`RECIPE_KEYS`) are accepted and ignored here, except ``image_size``,
    which is forwarded when the options type has that field.
    """
    fields = {f.name: f for f in dataclasses.fields(options_type)}
    unknown = sorted(k for k in config if k not in fields and k not in RECIPE_KEYS)
    if unknown:
        raise UserError(f"method {method!r} has no option(s) {', '.join(unknown)}; its options are: "
                        f"{', '.join(fields) or '(none)'}")
    values = {k: v for k, v in config.items() if k in fields}
    try:
        options = options_type(**values)
    except (TypeError, ValueError) as err:
        raise UserError(f"bad option for method {method!r}: {err}") from None
    return options


def check(condition: bool, message: str) -> None:
    """Raise :class:`UserError` with ``message`` unless ``condition`` holds (option validation)."""
    if not condition:
        raise UserError(message)


def recipe(optimizer: str, lr: float, weight_decay: float, epochs: int, batch_size: int,
           scheduler: str, scheduler_params: dict, image_size: int = 224,
           optimizer_params: dict | None = None, notes: str = "") -> dict[str, Any]:
    """A method's paper hyper-parameters in the form ``builder.DEFAULTS`` carries them."""
    out: dict[str, Any] = {
        "optimizer": optimizer, "lr": lr, "weight_decay": weight_decay, "epochs": epochs,
        "batch_size": batch_size, "scheduler": scheduler, "scheduler_params": dict(scheduler_params),
        "image_size": image_size, "optimizer_params": dict(optimizer_params or {}),
    }
    if notes:
        out["notes"] = notes
    return out


class BaselineMethod(nn.Module, abc.ABC):
    """Base of every baseline: ``forward``/``loss`` per method, ``predict``/``features`` shared.

    ``lr_multipliers`` maps parameter-name prefixes to a factor on the base learning rate
    (e.g. RUL's final Linear at 10×); :meth:`param_groups` turns it into optimiser groups.
    """

    needs_landmarks: ClassVar[bool] = False
    lr_multipliers: ClassVar[dict[str, float]] = {}

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise UserError(f"num_classes must be at least 2, got {num_classes}")
        self.num_classes = num_classes
        self.init_report: LoadReport | None = None

    # --- per method ---------------------------------------------------------------------------
    @abc.abstractmethod
    def embed(self, images: Tensor, landmarks: Tensor | None = None) -> dict[str, Tensor]:
        """``{"features": (B, D), "logits": (B, K), …}`` for the images (no label)."""

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        return self.embed(batch["image"], self._landmarks(batch))

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        ce = F.cross_entropy(outputs["logits"], batch["label"])
        return ce, {"ce": float(ce.detach())}

    # --- shared -------------------------------------------------------------------------------
    def predict(self, images: Tensor, landmarks: Tensor | None = None) -> Tensor:
        """Logits ``(B, K)`` for ``images``; never needs a label."""
        return self.embed(images, self._require_landmarks(landmarks))["logits"]

    def features(self, images: Tensor, landmarks: Tensor | None = None) -> Tensor:
        """Penultimate features ``(B, D)`` (what the classifier sees), e.g. for t-SNE."""
        return self.embed(images, self._require_landmarks(landmarks))["features"]

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimiser parameter groups applying :attr:`lr_multipliers` (one group when empty)."""
        groups: dict[float, list[nn.Parameter]] = {}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            factor = next((f for prefix, f in self.lr_multipliers.items() if name.startswith(prefix)), 1.0)
            groups.setdefault(factor, []).append(param)
        return [{"params": params, "lr": lr * factor} for factor, params in groups.items()]

    def _landmarks(self, batch: Mapping[str, Any]) -> Tensor | None:
        return self._require_landmarks(batch.get("landmarks"))

    def _require_landmarks(self, landmarks: Tensor | None) -> Tensor | None:
        if self.needs_landmarks and landmarks is None:
            raise UserError(f"{type(self).__name__} needs 68-point landmarks (batch key 'landmarks', "
                            "(B, 68, 2) pixels); build the dataset's landmark cache first or pick a "
                            "method that does not need landmarks")
        return landmarks


def pool_to_grid(x: Tensor, grid: int) -> Tensor:
    """Adaptive-average-pool a map to ``grid × grid`` (identity when it already is, e.g. 7×7 at 224)."""
    return x if x.shape[-2:] == (grid, grid) else F.adaptive_avg_pool2d(x, grid)


def feature_grid(image_size: int) -> int:
    """Side of the ResNet-18 layer4 map for a square input (7 at 224)."""
    return max(1, -(-int(image_size) // 32))


def all_gather_rows(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Concatenate equally-indexed 1-D tensors from every DDP rank (identity without DDP).

    Per-sample state (SCN's relabels) must be updated from every rank's samples: DDP broadcasts
    rank 0's buffers at each forward, so a rank-local update would be lost.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensors
    n = torch.tensor([tensors[0].shape[0]], device=tensors[0].device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    longest = int(max(int(s) for s in sizes))
    out = []
    for t in tensors:
        padded = torch.zeros(longest, dtype=t.dtype, device=t.device)
        padded[: t.shape[0]] = t
        parts = [torch.zeros_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        out.append(torch.cat([p[: int(s)] for p, s in zip(parts, sizes)]))
    return tuple(out)


def all_reduce_sum(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Sum tensors over DDP ranks in place (identity without DDP), for hand-updated buffers."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for t in tensors:
            dist.all_reduce(t)
    return tensors
