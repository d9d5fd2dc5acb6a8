"""Reproducible per-image parameter sampling.

``image_seed = u64(blake2b(f"{seed}|{key}"))`` with ``key`` the image's relative path (plus any
prefix the caller adds); each parameter then draws from its own NumPy ``PCG64`` stream seeded with
``u64(blake2b(f"{image_seed}|{name}"))``. So an image's parameters depend only on (seed, key):
not on batch size, worker count or order, and switching one parameter on or off never changes the
others' draws.

Distributions (a *spec*) as written in preset files::

    -3.0                      fixed value
    [-4.0, -2.0]              uniform on the closed interval
    {uniform: [a, b]}         the same
    {loguniform: [a, b]}      log-uniform, 0 < a <= b
    {randint: [a, b]}         integer, uniform on a..b inclusive
    {choice: [v1, v2, ...]}   one of the values, equally likely
    {fixed: v}                fixed value
    brooks                    (noise_read only) Brooks et al. 2019: log(read) = 2.18 log(shot) + 1.20
                              + N(0, 0.26^2), drawn from the image's noise_shot
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lldif_bench.errors import UserError

SAMPLING_SCHEME = "blake2b-pcg64-v1"
DIST_KINDS = ("fixed", "uniform", "loguniform", "randint", "choice", "brooks")


def stable_u64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def image_seed(seed: int, key: str) -> int:
    return stable_u64(f"{int(seed)}|{key}")


def stream(image_seed_value: int, name: str) -> np.random.Generator:
    """The independent random stream of one parameter of one image."""
    return np.random.Generator(np.random.PCG64(stable_u64(f"{image_seed_value}|{name}")))


@dataclass(frozen=True)
class Dist:
    """One parameter's distribution."""

    kind: str
    args: tuple = ()

    def sample(self, rng: np.random.Generator, context: dict[str, Any]) -> Any:
        k, a = self.kind, self.args
        if k == "fixed":
            return a[0]
        if k == "uniform":
            return float(a[0]) if a[0] == a[1] else float(rng.uniform(a[0], a[1]))
        if k == "loguniform":
            return float(math.exp(rng.uniform(math.log(a[0]), math.log(a[1]))))
        if k == "randint":
            return int(rng.integers(a[0], a[1], endpoint=True))
        if k == "choice":
            return a[int(rng.integers(0, len(a)))]
        if k == "brooks":
            shot = float(context.get("noise_shot", 0.0))
            if shot <= 0:
                return 0.0
            return float(math.exp(2.18 * math.log(shot) + 1.20 + rng.normal(0.0, 0.26)))
        raise AssertionError(k)

    def bounds(self) -> tuple[float, float] | None:
        """The (min, max) the distribution can produce, if numeric and known."""
        if self.kind in ("uniform", "loguniform", "randint"):
            return float(self.args[0]), float(self.args[1])
        if self.kind == "fixed" and isinstance(self.args[0], (int, float)):
            return float(self.args[0]), float(self.args[0])
        if self.kind == "choice" and all(isinstance(v, (int, float)) for v in self.args):
            return float(min(self.args)), float(max(self.args))
        return None

    def to_spec(self) -> Any:
        """The JSON/YAML form (round-trips through :func:`parse_dist`)."""
        if self.kind == "fixed":
            return self.args[0]
        if self.kind == "brooks":
            return "brooks"
        return {self.kind: list(self.args)}


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise UserError(f"{where}: expected a finite number, got {v!r}")
    return v


def parse_dist(spec: Any, where: str) -> Dist:
    """Parse a distribution spec (see the module docstring); UserError says what is wrong."""
    if spec is None:
        return Dist("fixed", (None,))
    if isinstance(spec, str):
        if spec == "brooks":
            return Dist("brooks")
        raise UserError(f"{where}: unknown distribution {spec!r} (a number, [low, high], "
                        f"or a mapping with one of: {', '.join(DIST_KINDS)})")
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Dist("fixed", (_number(spec, where),))
    if isinstance(spec, (list, tuple)):
        spec = {"uniform": list(spec)}
    if not isinstance(spec, dict) or len(spec) != 1:
        raise UserError(f"{where}: a distribution is a number, [low, high], or a mapping with exactly "
                        f"one of {', '.join(DIST_KINDS)}; got {spec!r}")
    (kind, args), = spec.items()
    if kind == "fixed":
        return Dist("fixed", (args if args is None else _number(args, where),))
    if kind == "choice":
        if not isinstance(args, (list, tuple)) or not args:
            raise UserError(f"{where}: choice needs a non-empty list")
        return Dist("choice", tuple(args))
    if kind in ("uniform", "loguniform", "randint"):
        if not isinstance(args, (list, tuple)) or len(args) != 2:
            raise UserError(f"{where}: {kind} needs [low, high], got {args!r}")
        lo, hi = (_number(v, where) for v in args)
        if lo > hi:
            raise UserError(f"{where}: {kind} low {lo} is above high {hi}")
        if kind == "loguniform" and lo <= 0:
            raise UserError(f"{where}: loguniform needs 0 < low, got {lo}")
        if kind == "randint":
            if int(lo) != lo or int(hi) != hi:
                raise UserError(f"{where}: randint needs integer bounds, got {args!r}")
            lo, hi = int(lo), int(hi)
        return Dist(kind, (lo, hi))
    raise UserError(f"{where}: unknown distribution {kind!r}; use one of {', '.join(DIST_KINDS)}")
