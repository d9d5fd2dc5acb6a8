"""The one ResNet-18 every baseline shares, and how its weights are initialised.

:class:`ResNet18Trunk` is torchvision's ``resnet18`` architecture without ``avgpool``/``fc`` and with
torchvision's parameter names (``conv1.weight``, ``layer1.0.bn1.*``, …), so torchvision, MS-Celeb
(``resnet18_msceleb.pth``) and DREAM (``ijba_res18_naive.pth.tar``) files load by name. It can stop
after ``num_stages`` residual stages (MA-Net's shared stem keeps 2, POSTER++'s image stream 3).

Initialisation (:func:`build_trunk`): ``None``/``"scratch"`` (offline, torchvision's own init),
``"imagenet"`` (torchvision's file, only if it is already in torch hub's cache; nothing is
downloaded) or a checkpoint path. :func:`load_trunk_weights` unwraps ``state_dict`` containers,
strips ``module.`` prefixes, remaps SCN's ``features.N`` layout, reports loaded / missing /
unexpected / shape-mismatched keys and refuses files that fill fewer than 95 % of the trunk.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
import torchvision
from torch import Tensor, nn

from lldif_bench.errors import UserError

log = logging.getLogger(__name__)

IMAGENET_FILES = ("resnet18-f37072fd.pth", "resnet18-5c106cde.pth")  # current, legacy torchvision
IMAGENET_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
MIN_LOADED_FRACTION = 0.95
STAGE_CHANNELS = (64, 128, 256, 512)
SCRATCH_NAMES = ("scratch", "none", "")


class TrunkOutput(NamedTuple):
    """``maps``: the output of each kept stage (layer1 … layerN); ``pooled``: GAP of the last map."""

    maps: tuple[Tensor, ...]
    pooled: Tensor

    @property
    def last(self) -> Tensor:
        return self.maps[-1]


class ResNet18Trunk(nn.Module):
    """torchvision ResNet-18 up to ``layer{num_stages}``: ``(B,3,H,W)`` → :class:`TrunkOutput`.

    >>> out = ResNet18Trunk()(torch.zeros(2, 3, 64, 64))
    >>> [tuple(m.shape[1:]) for m in out.maps], tuple(out.pooled.shape)
    ([(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)], (2, 512))
    """

    def __init__(self, num_stages: int = 4) -> None:
        super().__init__()
        if not 1 <= num_stages <= 4:
            raise ValueError(f"num_stages must be 1..4, got {num_stages}")
        net = torchvision.models.resnet18(weights=None)
        self.num_stages = num_stages
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        for i in range(1, num_stages + 1):
            setattr(self, f"layer{i}", getattr(net, f"layer{i}"))
        self.out_channels = STAGE_CHANNELS[num_stages - 1]
        self.init_report: LoadReport | None = None

    def stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward(self, x: Tensor) -> TrunkOutput:
        maps = []
        x = self.stem(x)
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
            maps.append(x)
        return TrunkOutput(tuple(maps), x.mean(dim=(2, 3)))


# ------------------------------------------------------------------------------------------------
# checkpoint loading


@dataclass
class LoadReport:
    """Which trunk tensors a checkpoint filled; ``fraction`` counts tensors, not parameters."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "name: file shape vs model shape"
    extra_blocks: list[str] = field(default_factory=list)  # e.g. layer1.2 of a ResNet-34 file
    layout: str = ""

    @property
    def fraction(self) -> float:
        total = len(self.loaded) + len(self.missing) + len(self.mismatched)
        return len(self.loaded) / total if total else 0.0

    def summary(self, limit: int = 5) -> str:
        def few(names: list[str]) -> str:
            shown = ", ".join(names[:limit])
            return shown + (f", … (+{len(names) - limit})" if len(names) > limit else "")

        total = len(self.loaded) + len(self.missing) + len(self.mismatched)
        parts = [(f"{self.source}: loaded {len(self.loaded)}/{total} trunk tensors "
                  f"({100 * self.fraction:.1f} %, layout {self.layout or 'unknown'})")]
        for name, keys in (("missing", self.missing), ("shape mismatch", self.mismatched),
                           ("unexpected (ignored)", self.unexpected)):
            if keys:
                parts.append(f"{name} {len(keys)}: {few(keys)}")
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {"source": self.source, "layout": self.layout, "fraction": round(self.fraction, 4),
                "extra_blocks": self.extra_blocks,
                "loaded": len(self.loaded), "missing": self.missing, "unexpected": self.unexpected,
                "mismatched": self.mismatched}


_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights")
_SCN_FEATURES = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a checkpoint file (torch pickle read with ``weights_only``, or safetensors)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"pretrained checkpoint {path} does not exist (pass --pretrained PATH to a "
                        "ResNet-18 file, 'imagenet', or 'scratch')")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  unreadable, truncated, or pickled non-tensor objects
        raise UserError(f"cannot read checkpoint {path}: {type(err).__name__}: {str(err)[:300]}. "
                        "Expected a torch state dict (optionally under 'state_dict') or .safetensors; "
                        "re-save a state dict if the file pickles custom classes") from None
    for _ in range(3):  # unwrap {'state_dict': {...}} and similar nested containers
        if isinstance(obj, dict):
            inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is not None:
                obj = inner
                continue
        break
    if not isinstance(obj, dict):
        raise UserError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise UserError(f"checkpoint {path} contains no tensors (keys: {', '.join(map(str, list(obj)[:8]))})")
    return tensors


def _strip_module(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def _scn_features(key: str) -> str:
    m = re.match(r"features\.(\d+)\.(.*)", key)
    return f"{_SCN_FEATURES[m.group(1)]}.{m.group(2)}" if m and m.group(1) in _SCN_FEATURES else key


def _strip(prefix: str) -> Callable[[str], str]:
    return lambda key: key.removeprefix(prefix)


# Candidate key layouts, tried in order; the one that matches the most trunk tensors wins.
KEY_LAYOUTS: dict[str, Callable[[str], str]] = {
    "torchvision": lambda k: k,                    # torchvision / resnet18_msceleb.pth / DREAM after module.
    "scn-features": _scn_features,                 # SCN / ARM Res18Feature: features.0 = conv1 …
    "backbone.": _strip("backbone."),
    "trunk.": _strip("trunk."),
    "encoder.": _strip("encoder."),
    "model.": _strip("model."),
    "resnet.": _strip("resnet."),
}


def match_state_dict(target: dict[str, Tensor], source: dict[str, Tensor], name: str) -> tuple[
        LoadReport, dict[str, Tensor]]:
    """Map ``source`` keys onto ``target`` (a module's state dict); return the report and the tensors."""
    source = {_strip_module(k): v for k, v in source.items()}
    counted = [k for k in target if not k.endswith("num_batches_tracked")]
    best: tuple[int, str, dict[str, Tensor]] | None = None
    for layout, remap in KEY_LAYOUTS.items():
        mapped = {remap(k): v for k, v in source.items()}
        hits = sum(1 for k in counted if k in mapped and mapped[k].shape == target[k].shape)
        if best is None or hits > best[0]:
            best = (hits, layout, mapped)
    assert best is not None
    _, layout, mapped = best
    report = LoadReport(source=name, layout=layout)
    chosen: dict[str, Tensor] = {}
    for key in counted:
        if key not in mapped:
            report.missing.append(key)
        elif mapped[key].shape != target[key].shape:
            report.mismatched.append(f"{key}: {tuple(mapped[key].shape)} vs {tuple(target[key].shape)}")
        else:
            report.loaded.append(key)
            chosen[key] = mapped[key]
    report.unexpected = [k for k in mapped if k not in target]
    report.extra_blocks = extra_residual_blocks(report.unexpected, target)
    return report, chosen


def extra_residual_blocks(unexpected: list[str], target: dict[str, Tensor]) -> list[str]:
    """Blocks like ``layer1.2`` that the file has and the trunk's stages lack (a deeper ResNet)."""
    stages = {k.split(".")[0] for k in target if k.startswith("layer")}
    blocks = {".".join(k.split(".")[:2]) for k in target if k.startswith("layer")}
    return sorted({".".join(k.split(".")[:2]) for k in unexpected
                   if re.match(r"layer\d\.\d+\.", k) and k.split(".")[0] in stages
                   and ".".join(k.split(".")[:2]) not in blocks})


def load_trunk_weights(trunk: nn.Module, path: str | Path,
                       min_fraction: float = MIN_LOADED_FRACTION) -> LoadReport:
    """Load a ResNet-18 checkpoint into ``trunk`` by name; fail under ``min_fraction`` loaded."""
    report, chosen = match_state_dict(trunk.state_dict(), read_state_dict(path), str(path))
    if report.fraction < min_fraction or report.extra_blocks:
        why = (f"it has residual blocks ResNet-18 lacks ({', '.join(report.extra_blocks[:4])}: a deeper "
               "ResNet?)" if report.extra_blocks else
               f"at least {100 * min_fraction:.0f} % of the trunk tensors must load")
        raise UserError(f"pretrained checkpoint does not fit the ResNet-18 trunk — {report.summary()}. "
                        f"{why[0].upper()}{why[1:]}; pass a torchvision-layout ResNet-18 file (e.g. "
                        "resnet18_msceleb.pth), 'imagenet' or 'scratch'")
    trunk.load_state_dict(chosen, strict=False)
    level = logging.WARNING if report.missing or report.mismatched else logging.INFO
    log.log(level, "pretrained trunk: %s", report.summary())
    return report


def imagenet_weights_file() -> Path:
    """torchvision's cached ImageNet ResNet-18 file; a clear error (no download) when absent."""
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    for name in IMAGENET_FILES:
        if (checkpoints / name).is_file():
            return checkpoints / name
    raise UserError(f"ImageNet ResNet-18 weights not found: {IMAGENET_FILES[0]} is not in {checkpoints} "
                    f"(nothing is downloaded). Fetch {IMAGENET_URL} on a machine with network access and "
                    f"put it in that folder (or set TORCH_HOME), or pass --pretrained PATH to a ResNet-18 "
                    "checkpoint such as resnet18_msceleb.pth, or use --pretrained scratch")


# Face-recognition ResNet-18 files the official repos use: named here only to say where they come from.
USER_SUPPLIED = {
    "msceleb": "resnet18_msceleb.pth (MS-Celeb-1M ResNet-18 of the RUL/DAN/DACL/EAC repos; Google Drive id "
               "1u2NtY-5DVlTunfN4yxfxys5n8uh7sc3n per DAN's README)",
    "dream": "ijba_res18_naive.pth.tar (DREAM's MS-Celeb-1M ResNet-18 used by SCN/RAN)",
}


def resolve_pretrained(pretrained: str | Path | None) -> Path | None:
    """``None``/``scratch`` → None; ``imagenet`` → the cached torchvision file; else the path."""
    key = "" if pretrained is None else str(pretrained).strip().lower()
    if key in SCRATCH_NAMES:
        return None
    if key == "imagenet":
        return imagenet_weights_file()
    if key in USER_SUPPLIED and not Path(str(pretrained)).expanduser().exists():
        raise UserError(f"'{pretrained}' weights are never downloaded: get {USER_SUPPLIED[key]} yourself "
                        "and pass --pretrained PATH to the file")
    return Path(pretrained).expanduser()


def build_trunk(pretrained: str | Path | None = None, num_stages: int = 4) -> ResNet18Trunk:
    """A :class:`ResNet18Trunk` initialised as ``pretrained`` says; ``trunk.init_report`` tells how."""
    trunk = ResNet18Trunk(num_stages)
    path = resolve_pretrained(pretrained)
    if path is not None:
        trunk.init_report = load_trunk_weights(trunk, path)
    return trunk
