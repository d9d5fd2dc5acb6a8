"""Device selection shared by every command: ``auto`` picks CUDA when present, else the CPU."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | None = "auto") -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"--device {name} was asked for but this PyTorch sees no CUDA device "
            f"(torch {torch.__version__}); use --device cpu or --device auto"
        )
    return torch.device(name)
