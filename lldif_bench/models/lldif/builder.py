"""``--method lldif``: the registered builder, its paper recipe and its stages."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from lldif_bench.errors import UserError
from lldif_bench.methods import METHODS

from .config import LLDifConfig, resolve_config
from .model import STAGES, LLDif, stage_specs
from .text import TEXT_ENCODERS, build_text_bank, build_text_encoder

log = logging.getLogger(__name__)

# Suite-level recipe keys the harness may pass along with the method options (ignored here, except
# image_size, which sets the model's input side).
RECIPE_KEYS = frozenset({
    "optimizer", "optimizer_params", "lr", "weight_decay", "epochs", "batch_size", "scheduler",
    "scheduler_params", "recipe", "notes",
})
SELECT_KEYS = ("config", "preset", "variant")


def config_from_options(options: dict[str, Any]) -> LLDifConfig:
    """``{"config": "tiny", "variant": "V3", "diffusion": {"timesteps": 8}, ...}`` → :class:`LLDifConfig`."""
    opts = {k: v for k, v in options.items() if k not in RECIPE_KEYS and v is not None}
    preset = opts.pop("config", None) or opts.pop("preset", None) or "base"
    opts.pop("preset", None)
    variant = opts.pop("variant", None)
    return resolve_config(str(preset), variant, opts)


NO_WEIGHTS = ("", "none", "scratch")


def load_imagenet_trunk(model: LLDif, path: str) -> None:
    """Initialise the LA-CLIP ResNet-18 trunk from a torchvision ResNet-18 state dict (optional).

    ``path`` is a file, or ``imagenet`` for torchvision's cached ``resnet18-f37072fd.pth``.
    """
    if model.cfg.laclip.trunk != "resnet18":
        raise UserError("pretrained weights only apply to laclip.trunk=resnet18 (not the tiny preset)")
    if path == "imagenet":
        from lldif_bench.availability import torch_hub_checkpoints

        path = str(torch_hub_checkpoints() / "resnet18-f37072fd.pth")
    file = Path(path)
    if not file.is_file():
        raise UserError(f"pretrained weights {path!r} not found; give a torchvision ResNet-18 file or 'scratch'")
    state = torch.load(file, map_location="cpu", weights_only=True)
    names = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}
    mapped = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        head, _, rest = key.partition(".")
        if head in names:
            mapped[f"{names[head]}.{rest}"] = value
    missing, _ = model.laclip.trunk.load_state_dict(mapped, strict=False)
    if len(missing) > 0.05 * len(model.laclip.trunk.state_dict()):
        raise UserError(f"{path} is not a torchvision ResNet-18 state dict ({len(missing)} tensors missing)")
    log.info("LA-CLIP trunk initialised from %s", path)


@METHODS.register("lldif", help="LLDif (paper): LA-CLIP, PNET_s1/s2, DTNet+DLNet LLformer, EPD diffusion")
def build(num_classes: int, *, num_train: int = 0, pretrained: str | None = None, **config) -> LLDif:
    """Build the training-time LLDif (starts in stage ``0``; the harness calls ``set_stage``)."""
    cfg = config_from_options(config)
    t = cfg.text
    encoder = build_text_encoder(t.kind, dim=t.dim, model=t.model, pretrained=t.pretrained)
    bank = build_text_bank(encoder, num_classes)
    if cfg.landmark.weights is None and cfg.dlnet.enabled:
        log.warning("LLDif: no landmark.weights given; the landmark trunk trains from scratch (no landmark prior)")
    model = LLDif(cfg, num_classes, bank, text_encoder_name=encoder.name)
    # what the harness logs and records in config.yaml as this run's external inputs
    model.input_sources = {"text encoder": f"{encoder.name} ({TEXT_ENCODERS.help(encoder.name)}, d_t={encoder.dim})"}
    if pretrained and str(pretrained).lower() not in NO_WEIGHTS:
        load_imagenet_trunk(model, str(pretrained))
    return model


build.DEFAULTS = {
    "optimizer": "adam", "lr": 3.5e-4, "weight_decay": 1e-4, "epochs": 200, "batch_size": 64,
    "scheduler": "exponential", "scheduler_params": {"gamma": 0.98}, "image_size": 112, "optimizer_params": {},
    "notes": "paper: Adam 3.5e-4, wd 1e-4, batch 64, 200 epochs per stage; stage lengths in stage_plan()",
}
# The harness's stage seam: each stage's length and optimiser/schedule recipe (paper, note §5).
# Presets do not change these; override per stage with the run config's ``stages: {"2b": {...}}``.
# The demo's settings on top of its shared recipe (lldif_bench.demo.demo_recipe): the input side must be
# a multiple of 56, and the `cpu` preset (<= 3x ResNet-18's training time per image,
# benchmarks/bench_lldif.py) is the one sized for that budget; every stage gets the recipe's epochs,
# gradients clipped at 1.
build.DEMO = {"image_size": 56, "method_options": {"config": "cpu"}, "grad_clip": 1.0}
build.STAGES = tuple(stage_specs(resolve_config("base")))
build.CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # named run configs: `--config tiny`
assert tuple(s["name"] for s in build.STAGES) == STAGES
