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


def flush_cpu_subnormals() -> bool:
    """Flush subnormal floats to zero in CPU math for the rest of the process; returns whether it is on.

    x86 handles subnormals (|x| < 1.2e-38) in microcode, ~100x slower per operation. Training produces
    them (e.g. softmax/exp tails in attention), and they stalled LLDif's stage 2b on the CPU: 10 steps
    took over 150 s instead of ~15 s (measured, tiny config). Values that small carry nothing a network
    can use. The flag is per thread and torch's worker threads copy it when they are created, so call
    this before the first multi-threaded torch operation: the CLI does so at start-up, the training
    harness again (which covers its own thread). GPU math is untouched.
    """
    return bool(torch.set_flush_denormal(True))
