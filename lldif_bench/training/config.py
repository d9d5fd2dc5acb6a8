"""The run configuration: a dataclass resolved from suite defaults, method defaults, YAML and CLI.

Precedence (later wins): the suite defaults below (the LLDif paper's recipe: Adam, lr 3.5e-4,
batch 64, weight decay 1e-4, 200 epochs) → the method builder's ``DEFAULTS`` → the ``--config``
YAML file → command-line flags. Every value is validated with a message naming the key.

>>> cfg = resolve_config({"method": "resnet18", "data": "data/syn", "epochs": 2})   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lldif_bench.errors import UserError

# Keys a method's DEFAULTS may carry that are documentation, not settings.
DEFAULTS_NOTE_KEYS = frozenset({"notes", "recipe"})


@dataclass
class AugmentConfig:
    """Batched on-device augmentation (see :mod:`lldif_bench.training.augment`)."""

    hflip: float = 0.5                                    # probability of a horizontal flip
    crop_p: float = 1.0                                   # probability of a random-resized crop
    crop_scale: tuple[float, float] = (0.85, 1.0)         # area fraction kept by the crop
    crop_ratio: tuple[float, float] = (0.9, 1.1)          # aspect ratio range of the crop box
    jitter_p: float = 0.0                                 # colour jitter is off by default: the
    brightness: float = 0.2                               # brightness of a low-light image is the
    contrast: float = 0.2                                 # condition under test
    saturation: float = 0.2
    hue: float = 0.0                                      # fraction of a half turn, as torchvision
    erase_p: float = 0.5                                  # RandomErasing as in baselines.md §0.4
    erase_scale: tuple[float, float] = (0.02, 0.25)
    erase_ratio: tuple[float, float] = (0.3, 3.3)

    def validate(self) -> None:
        for name in ("hflip", "crop_p", "jitter_p", "erase_p"):
            _check_range(f"augment.{name}", getattr(self, name), 0.0, 1.0)
        for name in ("brightness", "contrast", "saturation"):
            _check_range(f"augment.{name}", getattr(self, name), 0.0, 1.0)
        _check_range("augment.hue", self.hue, 0.0, 0.5)
        for name in ("crop_scale", "erase_scale"):
            lo, hi = _pair(f"augment.{name}", getattr(self, name))
            if not 0.0 < lo <= hi <= 1.0:
                raise UserError(f"augment.{name} must satisfy 0 < low <= high <= 1, got {[lo, hi]}")
        for name in ("crop_ratio", "erase_ratio"):
            lo, hi = _pair(f"augment.{name}", getattr(self, name))
            if not 0.0 < lo <= hi:
                raise UserError(f"augment.{name} must satisfy 0 < low <= high, got {[lo, hi]}")


@dataclass
class RunConfig:
    """Everything a training run needs; saved resolved as ``config.yaml`` in the run directory."""

    method: str = ""
    data: str = ""
    out: str = "runs"
    name: str | None = None
    # -- recipe (suite default = LLDif paper §4.2; a method's DEFAULTS override it) --------------
    epochs: int = 200
    batch_size: int = 64
    lr: float = 3.5e-4
    weight_decay: float = 1e-4
    optimizer: str = "adam"
    optimizer_params: dict = field(default_factory=dict)
    # The paper names no schedule; POSTER++'s ExponentialLR(0.98) per epoch (lldif-model.md §5).
    scheduler: str = "exponential"
    scheduler_params: dict = field(default_factory=lambda: {"gamma": 0.98})
    image_size: int = 224
    pretrained: str = "scratch"
    method_options: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)            # per-stage overrides {stage: {key: value}}
    stage: str | None = None                              # run only this stage (name or 0-based index)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # -- execution ------------------------------------------------------------------------------
    seed: int = 0
    device: str = "auto"
    amp: bool = True                                      # bf16 autocast, CUDA only
    channels_last: bool = True                            # CUDA only
    compile: bool = False                                 # torch.compile the model
    workers: int = 4                                      # threads for packing and batch prefetch
    grad_clip: float | None = None
    ema_decay: float | None = None                        # evaluate an EMA of the weights (e.g. 0.999); None: off
    eval_every: int = 1                                   # evaluate the test split every N epochs
    limit_batches: int | None = None                      # cap train steps per epoch (smoke tests)
    sync_bn: bool = True                                  # SyncBatchNorm under multi-GPU DDP
    find_unused_parameters: bool = False                  # DDP option for methods with idle branches
    cache_dir: str | None = None                          # packed-cache folder (default DATA/.cache)
    progress: bool = True
    resume: bool = False
    overwrite: bool = False
    leaderboard: bool = True
    command_line: str = ""
    # Keys set by the config file or the command line (filled by resolve_config): they beat a
    # multi-stage method's per-stage values, so `--epochs 2` shortens every stage of LLDif too.
    user_set: list = field(default_factory=list)

    # ---------------------------------------------------------------------------------------------
    def validate(self) -> RunConfig:
        """Check every value; raise :class:`UserError` naming the first bad key."""
        if not self.method:
            raise UserError("no method given: pass --method NAME (see `lldif-bench methods`)")
        if not self.data:
            raise UserError("no dataset given: pass --data DIR")
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("image_size", self.image_size, 16, 1024)
        _check_int("eval_every", self.eval_every, 1)
        _check_int("workers", self.workers, 0, 256)
        if self.limit_batches is not None:
            _check_int("limit_batches", self.limit_batches, 1)
        _check_positive("lr", self.lr)
        _check_range("weight_decay", self.weight_decay, 0.0, math.inf)
        if self.grad_clip is not None:
            _check_positive("grad_clip", self.grad_clip)
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise UserError(f"ema_decay must be in (0, 1) (e.g. 0.999) or null for no EMA, got {self.ema_decay!r}")
        for name in ("optimizer_params", "scheduler_params", "method_options", "stages"):
            if not isinstance(getattr(self, name), dict):
                raise UserError(f"{name} must be a mapping, got {type(getattr(self, name)).__name__}")
        from lldif_bench.training.optim import OPTIMIZERS, SCHEDULERS

        OPTIMIZERS.get(self.optimizer)
        SCHEDULERS.get(self.scheduler)
        from lldif_bench.device import DEVICE_CHOICES

        if self.device.split(":")[0].lower() not in DEVICE_CHOICES:
            raise UserError(f"device must be one of {', '.join(DEVICE_CHOICES)} (or cuda:N), got {self.device!r}")
        for name, value in self.stages.items():
            if not isinstance(value, dict):
                raise UserError(f"stages.{name} must be a mapping of overrides, got {value!r}")
            bad = sorted(set(value) - STAGE_KEYS)
            if bad:
                raise UserError(f"stages.{name}: unknown key(s) {', '.join(bad)}; a stage may set "
                                f"{', '.join(sorted(STAGE_KEYS))}")
        self.augment.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["augment"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["augment"].items()}
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "config") -> RunConfig:
        return apply_overrides(cls(), values, where)

    def for_stage(self, stage: str, method_stage: Mapping[str, Any]) -> RunConfig:
        """This config with a stage's overrides applied: the method's stage spec, then ``stages``."""
        cfg = dataclasses.replace(self, optimizer_params=dict(self.optimizer_params),
                                  scheduler_params=dict(self.scheduler_params))
        spec = {k: v for k, v in method_stage.items() if k != "name" and k not in self.user_set}
        bad = sorted(set(spec) - STAGE_KEYS)
        if bad:
            raise UserError(f"the method's stage {stage!r} sets unknown key(s) {', '.join(bad)}")
        return apply_overrides(cfg, {**spec, **self.stages.get(stage, {})}, f"stages.{stage}")


# Keys a stage may override (its own length, optimiser and schedule).
STAGE_KEYS = frozenset({"epochs", "lr", "weight_decay", "optimizer", "optimizer_params", "scheduler",
                        "scheduler_params", "batch_size", "grad_clip", "eval_every", "ema_decay"})


def field_names(cls=RunConfig) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def apply_overrides(cfg: RunConfig, values: Mapping[str, Any], where: str) -> RunConfig:
    """Set ``values`` on a copy of ``cfg``; unknown keys and wrong types are a :class:`UserError`."""
    if not isinstance(values, Mapping):
        raise UserError(f"{where} must be a mapping of settings, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(RunConfig)}
    unknown = sorted(k for k in values if k not in known)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; known keys: "
                        f"{', '.join(known)}")
    cfg = dataclasses.replace(cfg)
    for key, value in values.items():
        if key == "user_set":
            cfg.user_set = list(value or [])
        elif key == "augment":
            cfg.augment = _merge_augment(cfg.augment, value, where)
        elif key in ("optimizer_params", "scheduler_params", "method_options", "stages"):
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise UserError(f"{where}: {key} must be a mapping, got {value!r}")
            setattr(cfg, key, dict(value))
        else:
            setattr(cfg, key, _coerce(key, value, getattr(RunConfig(), key), where))
    return cfg


def _merge_augment(current: AugmentConfig, values: Any, where: str) -> AugmentConfig:
    if not isinstance(values, Mapping):
        raise UserError(f"{where}: augment must be a mapping, got {values!r}")
    known = field_names(AugmentConfig)
    unknown = sorted(k for k in values if k not in known)
    if unknown:
        raise UserError(f"{where}: unknown augment key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    out = dataclasses.replace(current)
    for key, value in values.items():
        default = getattr(AugmentConfig(), key)
        if isinstance(default, tuple):
            setattr(out, key, tuple(_pair(f"augment.{key}", value)))
        else:
            setattr(out, key, _coerce(f"augment.{key}", value, default, where))
    return out


def _coerce(key: str, value: Any, default: Any, where: str) -> Any:
    """Convert YAML/CLI scalars to the field's type (int/float/bool/str), or explain why not."""
    if value is None:
        return None
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if not isinstance(value, (bool, int)):
                raise TypeError(value)
            return bool(value)
        if isinstance(default, int) and not isinstance(default, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            if isinstance(value, bool):
                raise TypeError(value)
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise TypeError(value)
            return float(value)
        if key in ("limit_batches",):
            return int(value)
        if key in ("grad_clip", "ema_decay"):
            return float(value)
        if key == "stage":
            return str(value)
        return value if not isinstance(default, str) else str(value)
    except (TypeError, ValueError):
        kind = type(default).__name__
        raise UserError(f"{where}: {key} must be {kind}, got {value!r}") from None


def _pair(key: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise UserError(f"{key} must be a pair [low, high], got {value!r}")
    try:
        return float(value[0]), float(value[1])
    except (TypeError, ValueError):
        raise UserError(f"{key} must be two numbers, got {value!r}") from None


def _check_int(key: str, value: Any, low: int, high: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise UserError(f"{key} must be an integer {span}, got {value!r}")


def _check_positive(key: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise UserError(f"{key} must be a positive number, got {value!r}")


def _check_range(key: str, value: Any, low: float, high: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (low <= value <= high):
        raise UserError(f"{key} must be a number in [{low}, {high}], got {value!r}")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping; a run's saved ``config.yaml`` (with a ``config:`` section) works too."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    if "config" in data and isinstance(data["config"], dict) and "package_version" in data:
        data = data["config"]  # a run's config.yaml
    return data


def method_defaults(builder: Any) -> dict[str, Any]:
    """The settings a method builder's ``DEFAULTS`` contributes (notes stripped)."""
    defaults = dict(getattr(builder, "DEFAULTS", {}) or {})
    return {k: v for k, v in defaults.items() if k not in DEFAULTS_NOTE_KEYS}


def named_config(builder, config: str | Path) -> Path:
    """``--config`` as a file path, or as the name of one of the method's shipped configs
    (``builder.CONFIG_DIR/<name>.yaml``, e.g. LLDif's ``tiny``)."""
    path = Path(config)
    if path.is_file():
        return path
    config_dir = getattr(builder, "CONFIG_DIR", None)
    if config_dir is not None and (Path(config_dir) / f"{config}.yaml").is_file():
        return Path(config_dir) / f"{config}.yaml"
    shipped = sorted(p.stem for p in Path(config_dir).glob("*.yaml")) if config_dir else []
    raise UserError(f"--config {config}: no such file" + (
        f", and not one of this method's named configs ({', '.join(shipped)})" if shipped else ""))


def resolve_config(cli: Mapping[str, Any], config_file: str | Path | None = None) -> RunConfig:
    """Suite defaults → method DEFAULTS → YAML file → CLI values (``None`` values are "not given")."""
    from lldif_bench.methods import load_all_methods

    cli = {k: v for k, v in cli.items() if v is not None}
    looks_like_name = config_file and Path(config_file).suffix == "" and len(Path(config_file).parts) == 1
    if looks_like_name and not Path(config_file).is_file() and cli.get("method"):
        config_file = named_config(load_all_methods().get(str(cli["method"])), config_file)
    file_values = load_yaml(config_file) if config_file else {}
    method = cli.get("method") or file_values.get("method")
    if not method:
        raise UserError("no method given: pass --method NAME (see `lldif-bench methods`)")
    builder = load_all_methods().get(str(method))
    cfg = apply_overrides(RunConfig(), method_defaults(builder), f"method {method!r} DEFAULTS")
    if config_file:
        cfg = apply_overrides(cfg, file_values, str(config_file))
    cfg = apply_overrides(cfg, cli, "command line")
    cfg.user_set = sorted(set(file_values) | set(cli))
    return cfg.validate()
