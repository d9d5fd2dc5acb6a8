"""What this installation can do offline: optional packages and pretrained-weight files.

Each check is registered by name and returns ``(available, detail)``; ``lldif-bench info`` prints
them all. Modules that add an optional backend register its check here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from lldif_bench.registry import Registry

CHECKS: Registry[Callable[[], tuple[bool, str]]] = Registry("availability check")


def torch_hub_checkpoints() -> Path:
    """Where torch.hub (torchvision, face-alignment) caches downloaded weights."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def weight_file_check(filename: str, what: str) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        path = torch_hub_checkpoints() / filename
        if path.is_file():
            return True, str(path)
        return False, f"{what}: {path} is missing"

    return check


def lazy_check(module: str, function: str, *args) -> Callable[[], tuple[bool, str]]:
    """A check implemented by an optional-backend module, imported only when the check runs."""

    def check() -> tuple[bool, str]:
        return getattr(importlib.import_module(module), function)(*args)

    return check


CHECKS.add("face-alignment landmarks (2D-FAN + SFD detector weights)",
           lazy_check("lldif_bench.landmarks.face_alignment_backend", "availability", False))
CHECKS.add("face-alignment landmarks on aligned crops (2D-FAN weights only)",
           lazy_check("lldif_bench.landmarks.face_alignment_backend", "availability", True))
CHECKS.add("dlib landmarks (dlib + 68-point predictor)",
           lazy_check("lldif_bench.landmarks.dlib_backend", "availability"))
CHECKS.add("LLDif MiniLM text encoder (offline)",
           lazy_check("lldif_bench.models.lldif.text", "minilm_availability"))
CHECKS.add("LLDif open_clip text encoder", lazy_check("lldif_bench.models.lldif.text", "openclip_availability"))
CHECKS.add("torchvision ImageNet ResNet-18 weights",
           weight_file_check("resnet18-f37072fd.pth", "torchvision downloads it on first use"))


def run_checks() -> list[tuple[str, bool, str]]:
    rows = []
    for entry in CHECKS:
        try:
            ok, detail = entry.obj()
        except Exception as err:  # noqa: BLE001  (a broken optional install must not break `info`)
            ok, detail = False, f"check failed: {err}"
        rows.append((entry.name, ok, detail))
    return rows
