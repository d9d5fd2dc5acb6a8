"""Presets: per-image parameter distributions plus preset-level options.

Sources: the built-in YAML files in ``degradations/presets/`` (registered by file name), a user
YAML/JSON file of the same shape, or a Lightroom ``.xmp`` preset (fixed values, Lightroom "Sync"
semantics). File shape::

    name: my-preset                 # default: the file name
    description: what it is for
    flavor: lrlike                  # or kosugi
    params:                         # any subset; absent = neutral. Distributions: see sampling.py
      exposure_ev: [-4.0, -2.0]
      d_temp: {uniform: [-30, 10]}
      highlights: -45
      jpeg_quality: {randint: [60, 95]}
    jpeg_recompress: false          # true: JPEG artefacts even when the output file is lossless
    options: {radius_frac: 0.05, halo: true, exposure_mode: gain, tone_gain_ev: 1.5,
              k_temp: 1.0, k_tint: 1.5, wb_normalisation: luminance}
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from degradations.pipeline import PipelineOptions
from degradations.sampling import (
    SAMPLING_SCHEME,
    Dist,
    image_seed,
    parse_dist,
    stable_u64,
    stream,
)
from degradations.white_balance import REFERENCE_TEMPERATURE, REFERENCE_TINT
from lldif_bench.errors import UserError
from lldif_bench.registry import Registry

log = logging.getLogger("degradations")

PRESET_VERSION = 1
BUILTIN_DIR = Path(__file__).parent / "presets"
# Sampling order is fixed (noise_read may depend on noise_shot); each draws from its own stream.
PARAM_RANGES: dict[str, tuple[float, float]] = {
    "exposure_ev": (-5.0, 5.0),
    "d_temp": (-100.0, 100.0), "d_tint": (-100.0, 100.0),
    "temperature_k": (2000.0, 50000.0), "tint": (-150.0, 150.0),
    "highlights": (-100.0, 100.0), "shadows": (-100.0, 100.0),
    "noise_shot": (0.0, 0.1), "noise_read": (0.0, 0.1),
    "cam_gain_r": (0.5, 4.0), "cam_gain_b": (0.5, 4.0),
    "jpeg_quality": (1.0, 100.0),
}
INTEGER_PARAMS = {"jpeg_quality"}
TOP_LEVEL_KEYS = {"name", "description", "flavor", "params", "options", "jpeg_recompress", "wb_mode"}


@dataclass(frozen=True)
class Preset:
    """A resolved preset: ``sample(seed, key)`` gives one image's parameters."""

    name: str
    description: str
    params: dict[str, Dist]
    options: PipelineOptions = field(default_factory=PipelineOptions)
    wb_mode: str = "none"
    jpeg_recompress: bool = False
    source: str = "builtin"
    sha256: str | None = None
    xmp: dict[str, Any] | None = None

    @property
    def flavor(self) -> str:
        return self.options.flavor

    def sample(self, seed: int, key: str) -> dict[str, Any]:
        """Every parameter of the image ``key`` (its relative path, plus any caller prefix).

        A flat JSON-able dict: ``preset``, ``flavor``, ``wb_mode``, ``image_seed`` (hex),
        ``noise_seed`` (int), ``jpeg_quality`` (int or None) and each sampled parameter.
        """
        iseed = image_seed(seed, key)
        out: dict[str, Any] = {"preset": self.name, "flavor": self.flavor, "wb_mode": self.wb_mode,
                               "image_seed": f"{iseed:016x}"}
        for name in PARAM_RANGES:
            if name == "jpeg_quality" or name not in self.params:
                continue
            value = self.params[name].sample(stream(iseed, name), out)
            out[name] = float(value)
        out["noise_seed"] = stable_u64(f"{iseed}|noise") & 0x7FFF_FFFF_FFFF_FFFF
        jq = self.params.get("jpeg_quality")
        q = jq.sample(stream(iseed, "jpeg_quality"), out) if jq is not None else None
        out["jpeg_quality"] = None if q is None else int(q)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The full resolved description (JSON-able), e.g. for a dataset card."""
        d: dict[str, Any] = {
            "name": self.name, "description": self.description, "source": self.source,
            "sha256": self.sha256, "preset_version": PRESET_VERSION, "sampling": SAMPLING_SCHEME,
            "flavor": self.flavor, "wb_mode": self.wb_mode,
            "params": {k: self.params[k].to_spec() for k in PARAM_RANGES if k in self.params},
            "jpeg_recompress": self.jpeg_recompress,
            "options": self.options.to_dict(),
            "wb_reference": {"temperature_k": REFERENCE_TEMPERATURE, "tint": REFERENCE_TINT},
        }
        if self.xmp is not None:
            d["xmp"] = self.xmp
        return d


def _check_range(name: str, dist: Dist, where: str) -> None:
    lo, hi = PARAM_RANGES[name]
    b = dist.bounds()
    if b is not None and (b[0] < lo or b[1] > hi):
        raise UserError(f"{where}: {name} range [{b[0]:g}, {b[1]:g}] leaves the allowed [{lo:g}, {hi:g}]")
    if name in INTEGER_PARAMS and dist.kind not in ("randint", "fixed", "choice"):
        raise UserError(f"{where}: {name} is an integer; use a number, randint or choice")
    if dist.kind == "brooks" and name != "noise_read":
        raise UserError(f"{where}: 'brooks' is only valid for noise_read")
    if dist.kind in ("fixed", "choice") and any(
            v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))
            for v in dist.args):
        raise UserError(f"{where}: {name} needs numbers, got {list(dist.args)!r}")


def preset_from_mapping(data: Mapping[str, Any], *, default_name: str, source: str,
                        sha256: str | None = None, xmp: dict | None = None) -> Preset:
    """Validate a preset mapping (the YAML/JSON shape in the module docstring)."""
    where = f"preset {default_name!r} ({source})"
    if not isinstance(data, Mapping):
        raise UserError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    unknown = set(data) - TOP_LEVEL_KEYS
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                        f"valid: {', '.join(sorted(TOP_LEVEL_KEYS))}")
    raw_params = data.get("params") or {}
    if not isinstance(raw_params, Mapping):
        raise UserError(f"{where}: 'params' must be a mapping of parameter -> distribution")
    bad = set(raw_params) - set(PARAM_RANGES)
    if bad:
        raise UserError(f"{where}: unknown parameter(s) {', '.join(sorted(bad))}; "
                        f"valid: {', '.join(PARAM_RANGES)}")
    params: dict[str, Dist] = {}
    for name, spec in raw_params.items():
        dist = parse_dist(spec, f"{where}: params.{name}")
        if dist.kind == "fixed" and dist.args[0] is None:
            continue  # null = off
        _check_range(name, dist, where)
        params[name] = dist
    has_inc = "d_temp" in params or "d_tint" in params
    has_abs = "temperature_k" in params or "tint" in params
    if has_inc and has_abs:
        raise UserError(f"{where}: give either incremental (d_temp/d_tint) or absolute "
                        "(temperature_k/tint) white balance, not both")
    wb_mode = data.get("wb_mode") or ("incremental" if has_inc else "absolute" if has_abs else "none")
    if wb_mode not in ("none", "incremental", "absolute"):
        raise UserError(f"{where}: wb_mode must be none, incremental or absolute, got {wb_mode!r}")
    opts = dict(data.get("options") or {})
    if "flavor" in data:
        opts["flavor"] = data["flavor"]
    bad_opts = set(opts) - set(PipelineOptions.field_names())
    if bad_opts:
        raise UserError(f"{where}: unknown option(s) {', '.join(sorted(bad_opts))}; "
                        f"valid: {', '.join(PipelineOptions.field_names())}")
    try:
        options = PipelineOptions(**opts)
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{where}: {err}") from None
    if options.flavor == "kosugi" and wb_mode == "absolute":
        raise UserError(f"{where}: the kosugi flavour has relative temperature/tint sliders only; "
                        "use d_temp/d_tint")
    return Preset(name=str(data.get("name") or default_name), description=str(data.get("description") or ""),
                  params=params, options=options, wb_mode=wb_mode,
                  jpeg_recompress=bool(data.get("jpeg_recompress", False)), source=source,
                  sha256=sha256, xmp=xmp)


def _load_yaml_or_json(path: Path) -> Preset:
    data = path.read_bytes()
    try:
        parsed = json.loads(data) if path.suffix.lower() == ".json" else yaml.safe_load(data)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"preset file {path}: cannot parse ({err.__class__.__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''})") from None
    return preset_from_mapping(parsed, default_name=path.stem, source=str(path),
                               sha256=hashlib.sha256(data).hexdigest())


def preset_from_xmp(path: Path) -> Preset:
    """A preset with the XMP's fixed values (warnings are logged and recorded in ``xmp``)."""
    from degradations.xmp import parse_xmp

    settings = parse_xmp(path.read_bytes(), str(path))
    for w in settings.warnings:
        log.warning("%s: %s", path.name, w)
    mapping = {"name": settings.name or path.stem,
               "description": f"Lightroom XMP preset {path.name} (fixed values)",
               "params": dict(settings.params), "wb_mode": settings.wb_mode}
    return preset_from_mapping(mapping, default_name=path.stem, source=str(path),
                               sha256=settings.sha256, xmp=settings.to_dict())


PRESET_FILE_LOADERS = {".yaml": _load_yaml_or_json, ".yml": _load_yaml_or_json,
                       ".json": _load_yaml_or_json, ".xmp": preset_from_xmp}

BUILTIN_PRESETS: Registry[Path] = Registry("built-in preset")
for _p in sorted(BUILTIN_DIR.glob("*.yaml"), key=lambda p: p.stem):
    _desc = (yaml.safe_load(_p.read_text()) or {}).get("description", "")
    BUILTIN_PRESETS.add(_p.stem, _p, help=str(_desc).splitlines()[0] if _desc else "")


def load_preset(name_or_path: str | Path) -> Preset:
    """A built-in preset by name, or a ``.yaml``/``.yml``/``.json``/``.xmp`` file by path."""
    text = str(name_or_path)
    if text in BUILTIN_PRESETS:
        path = BUILTIN_PRESETS.get(text)
        preset = _load_yaml_or_json(path)
        return Preset(**{**preset.__dict__, "source": f"builtin:{text}"})
    path = Path(text)
    loader = PRESET_FILE_LOADERS.get(path.suffix.lower())
    if loader is None or not path.is_file():
        hint = ("no such file" if loader is not None else
                f"files must end in {', '.join(PRESET_FILE_LOADERS)}")
        raise UserError(f"unknown preset {text!r}: not a built-in ({', '.join(BUILTIN_PRESETS.names())}) "
                        f"and {hint}")
    return loader(path)
