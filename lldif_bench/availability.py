"""What this installation can do offline: optional packages and pretrained-weight files.

Each check is registered by name and returns ``(available, detail)``; ``lldif-bench info`` prints
them all. Modules that add an optional backend register its check here.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Callable

from lldif_bench.registry import Registry

CHECKS: Registry[Callable[[], tuple[bool, str]]] = Registry("availability check")


def torch_hub_checkpoints() -> Path:
    """Where torch.hub (torchvision, face-alignment) caches downloaded weights."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def package_check(module: str, pip_name: str) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        if importlib.util.find_spec(module) is None:
            return False, f"not installed (pip install {pip_name})"
        return True, "installed"

    return check


def weight_file_check(filename: str, what: str) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        path = torch_hub_checkpoints() / filename
        if path.is_file():
            return True, str(path)
        return False, f"{what}: {path} is missing"

    return check


CHECKS.add("face-alignment package", package_check("face_alignment", "face-alignment"))
CHECKS.add("face-alignment 2D-FAN weights",
           weight_file_check("2DFAN4-cd938726ad.zip", "fetched from the web at first use"))
CHECKS.add("face-alignment SFD detector weights",
           weight_file_check("s3fd-619a316812.pth", "fetched from the web at first use"))
CHECKS.add("torchvision ImageNet ResNet-18 weights",
           weight_file_check("resnet18-f37072fd.pth", "torchvision downloads it on first use"))


def run_checks() -> list[tuple[str, bool, str]]:
    rows = []
    for entry in CHECKS:
        try:
            ok, detail = entry.obj()
        except Exception as err:  # a broken optional install must not break `info`
            ok, detail = False, f"check failed: {err}"
        rows.append((entry.name, ok, detail))
    return rows


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
