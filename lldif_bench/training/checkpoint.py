"""Checkpoints: weights as safetensors (no code runs on load), training state as a ``weights_only`` file.

``<dir>/last.safetensors`` and ``best.safetensors`` hold the model's ``state_dict`` (shared tensors
de-duplicated by safetensors); ``<dir>/state.pt`` holds the optimiser, scheduler, epoch, metric
history and best result as plain tensors/numbers/strings, so ``torch.load(..., weights_only=True)``
reads it. Every file is written to a temporary name and renamed, so a killed run never leaves a
half-written checkpoint under the final name.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from lldif_bench.errors import UserError

LAST = "last.safetensors"
BEST = "best.safetensors"
STATE = "state.pt"


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``model``'s state_dict as safetensors, atomically."""
    _atomic(Path(path), lambda tmp: save_model(model, tmp, metadata={k: str(v) for k, v in (metadata or {}).items()}))


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load safetensors weights into ``model``; a mismatch is a :class:`UserError` naming the keys."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    missing, unexpected = load_model(model, str(path), strict=False, device="cpu")
    if strict and (missing or unexpected):
        raise UserError(f"{path} does not match the model: missing {sorted(missing)[:5]}, "
                        f"unexpected {sorted(unexpected)[:5]} (was it written by another method or stage?)")


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write the training state with ``torch.save``, atomically."""
    _atomic(Path(path), lambda tmp: torch.save(state, tmp))


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a training state with ``weights_only=True`` (tensors, numbers, strings, containers)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no training state at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError) as err:  # truncated/foreign
        raise UserError(f"{path} is not a readable training state ({err}); delete it to restart") from None
