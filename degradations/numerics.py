"""Two interchangeable sets of elementary functions for the ops: ``exact`` and ``deterministic``.

* ``exact`` uses PyTorch's own ``exp2``/``pow`` (most accurate, differentiable; the float path).
* ``deterministic`` uses only IEEE-exact operations (``+ - * /``, ``sqrt``, comparisons, gathers):
  a polynomial ``exp2`` and interpolated look-up tables. PyTorch evaluates transcendental functions
  with vectorised code for most elements and scalar code for the remainder, and the two may differ
  by one ulp; which elements take which branch depends on the batch layout and the thread count.
  Avoiding them makes every image's result bit-identical whether it is processed alone or inside
  any batch, and the same on CPU and CUDA. The uint8 export path uses this set.

The ops take a :class:`Numerics` object, so one implementation serves both paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lldif_bench.registry import Registry

LN2 = math.log(2.0)
# ProPhoto-style encoding used by the Kosugi & Yamasaki editor: gamma 1.8 with a linear toe.
PP_TOE = 1.0 / 512.0


def lightness_formula(y: torch.Tensor) -> torch.Tensor:
    """CIE L*/100 of relative luminance ``y`` (exact; the cube-root branch is gradient-safe)."""
    y_safe = y.clamp(min=0.008856)
    return torch.where(y > 0.008856, 1.16 * y_safe.pow(1.0 / 3.0) - 0.16, 9.033 * y)


def pp_encode_formula(q: torch.Tensor) -> torch.Tensor:
    q_safe = q.clamp(min=PP_TOE)
    return torch.where(q >= PP_TOE, q_safe.pow(1.0 / 1.8), 16.0 * q)


def pp_decode_formula(p: torch.Tensor) -> torch.Tensor:
    p_safe = p.clamp(min=16.0 * PP_TOE)
    return torch.where(p >= 16.0 * PP_TOE, p_safe.pow(1.8), p / 16.0)


def srgb_to_linear_formula(v: torch.Tensor) -> torch.Tensor:
    import kornia.color as kc

    return _channelwise(kc.rgb_to_linear_rgb, v)


def linear_to_srgb_formula(v: torch.Tensor) -> torch.Tensor:
    import kornia.color as kc

    return _channelwise(kc.linear_rgb_to_rgb, v)


def _channelwise(fn: Callable[[torch.Tensor], torch.Tensor], v: torch.Tensor) -> torch.Tensor:
    """Apply a Kornia colour function (which wants 3 channels) to any tensor, element by element."""
    if v.dim() >= 3 and v.shape[-3] == 3:
        return fn(v)
    flat = v.reshape(1, 1, 1, -1).expand(1, 3, 1, -1)
    return fn(flat)[0, 0, 0].reshape(v.shape)


# ---------------------------------------------------------------- deterministic building blocks

_EXP_TAYLOR = [1.0 / math.factorial(k) for k in range(9)]


Scratch = Callable[[str, tuple[int, ...], torch.dtype], torch.Tensor]


def exp2_deterministic(x: torch.Tensor) -> torch.Tensor:
    """``2**x`` from ``+ - *`` and a table of exact powers of two (relative error < 1e-8).

    Range reduction ``x = n + f`` with integer ``n`` and ``|f| <= 1/2``; ``2**f = e**(f ln 2)`` by a
    degree-8 Taylor polynomial (Horner, one rounding per op). Exact at integers: ``2**-1 == 0.5``.
    Differentiable (``n`` is piecewise constant). ``x`` is clamped to [-60, 60].
    """
    if not x.requires_grad:  # the same operations in place: few large allocations
        return exp2_deterministic_(x.clamp(-60.0, 60.0), _fresh(x.device))
    x = x.clamp(-60.0, 60.0)
    n = torch.floor(x + 0.5)
    t = (x - n) * LN2
    p = torch.full_like(t, _EXP_TAYLOR[-1])
    for c in reversed(_EXP_TAYLOR[:-1]):
        p = p * t + c
    scale = gather1d(_powers_of_two(x.device, x.dtype), (n + 60).to(torch.int32))
    return p * scale


def exp2_deterministic_(x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
    """:func:`exp2_deterministic` (no autograd) computed in ``x``'s storage, which it overwrites
    and returns; the other intermediates come from ``scratch(name, shape, dtype)`` (e.g. buffers
    reused between calls: a fresh large allocation costs page faults on the CPU). The same
    operations in the same order, so the same bits."""
    x.clamp_(-60.0, 60.0)
    shape = tuple(x.shape)
    n = torch.add(x, 0.5, out=scratch("exp2.n", shape, x.dtype)).floor_()
    t = x.sub_(n).mul_(LN2)
    p = scratch("exp2.p", shape, x.dtype).fill_(_EXP_TAYLOR[-1])
    for c in reversed(_EXP_TAYLOR[:-1]):
        p.mul_(t).add_(c)
    index = scratch("exp2.index", shape, torch.int32).copy_(n.add_(60))
    scale = torch.index_select(_powers_of_two(x.device, x.dtype), 0, index.view(-1), out=n.view(-1))
    return torch.mul(p, scale.view(shape), out=x)


def _fresh(device: torch.device) -> Scratch:
    """A scratch source that allocates new tensors."""
    return lambda name, shape, dtype: torch.empty(shape, dtype=dtype, device=device)


def gather1d(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``table[idx]`` for a 1-D table and an index tensor of any shape (``index_select`` is much
    faster than advanced indexing on the CPU)."""
    return table.index_select(0, idx.reshape(-1)).view(idx.shape)


_CACHE: dict[tuple, torch.Tensor] = {}


def _cached(key: tuple, build: Callable[[], np.ndarray | torch.Tensor], device: torch.device,
            dtype: torch.dtype) -> torch.Tensor:
    if not isinstance(device, torch.device):
        device = torch.device(device)
    full = key + (device, dtype)  # the device itself: str(device) costs microseconds per call
    table = _CACHE.get(full)
    if table is None:
        arr = build()
        table = torch.as_tensor(arr).to(device=device, dtype=dtype)
        _CACHE[full] = table
    return table


def _powers_of_two(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return _cached(("pow2",), lambda: np.array([2.0 ** k for k in range(-60, 61)], dtype=np.float64),
                   device, dtype)


@dataclass(frozen=True)
class InterpTable:
    """A function sampled on ``[lo, hi]`` at ``n + 1`` knots and evaluated by linear interpolation.

    Inputs are clamped to the domain; evaluation is two gathers and three exact ops, so it is
    bit-reproducible and differentiable (piecewise linear).
    """

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    lo: float = 0.0
    hi: float = 1.0
    n: int = 4096

    def tables(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        def build() -> np.ndarray:
            xs = np.linspace(self.lo, self.hi, self.n + 1, dtype=np.float64)
            ys = self.fn(xs)
            return np.stack([ys[:-1], ys[1:] - ys[:-1]])

        both = _cached(("interp", self.name, self.lo, self.hi, self.n), build, device, dtype)
        return both[0], both[1]

    def __call__(self, x: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
        """The function at ``x``; with ``scratch`` (no autograd) the intermediates and the result
        live in its ``{name}.*`` buffers (same bits)."""
        base, slope = self.tables(x.device, x.dtype)
        if scratch is not None and not x.requires_grad:
            return self._into(x, base, slope, scratch)
        pos = (x.clamp(self.lo, self.hi) - self.lo) * (self.n / (self.hi - self.lo))
        idx = pos.detach().floor().clamp(max=self.n - 1)
        frac = pos - idx
        i = idx.to(torch.int32)
        return gather1d(base, i) + gather1d(slope, i) * frac

    def _into(self, x: torch.Tensor, base: torch.Tensor, slope: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        shape, tag = tuple(x.shape), self.name

        def buffer(name: str, dtype: torch.dtype = x.dtype) -> torch.Tensor:
            return scratch(f"{tag}.{name}", shape, dtype)

        pos = torch.clamp(x, self.lo, self.hi, out=buffer("pos")).sub_(self.lo).mul_(self.n / (self.hi - self.lo))
        idx = torch.floor(pos, out=buffer("segment")).clamp_(max=self.n - 1)
        frac = pos.sub_(idx)
        i = buffer("index", torch.int32).copy_(idx).view(-1)
        out = torch.index_select(slope, 0, i, out=buffer("value").view(-1)).view(shape).mul_(frac)
        return out.add_(torch.index_select(base, 0, i, out=idx.view(-1)).view(shape))


def per_image_curve(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Evaluate image ``b``'s curve ``table[b]`` (``(B, n + 1)`` samples on [0, 1]) at ``x``
    ``(B, 1, H, W)`` by linear interpolation; ``x`` is clamped to [0, 1]. Exact ops and gathers
    only, so bit-reproducible; differentiable in ``x``."""
    bsz, n1 = table.shape
    n = n1 - 1
    base = table[:, :-1].contiguous().view(-1)
    slope = (table[:, 1:] - table[:, :-1]).contiguous().view(-1)
    offsets = torch.arange(bsz, device=x.device, dtype=torch.int32).view(-1, 1, 1, 1) * n
    if not (x.requires_grad or table.requires_grad):  # inference: fewer temporaries, same bits
        pos = x.clamp(0.0, 1.0).mul_(float(n))
        idx = pos.floor().clamp_(max=n - 1)
        frac = pos.sub_(idx)
        flat = idx.to(torch.int32).add_(offsets)
        return gather1d(slope, flat).mul_(frac).add_(gather1d(base, flat))
    pos = x.clamp(0.0, 1.0) * float(n)
    idx = pos.detach().floor().clamp(max=n - 1)
    frac = pos - idx
    flat = idx.to(torch.int32) + offsets
    return gather1d(base, flat) + gather1d(slope, flat) * frac


def np_lightness(y: np.ndarray) -> np.ndarray:
    return np.where(y > 0.008856, 1.16 * np.cbrt(y) - 0.16, 9.033 * y)


def _np_pp_encode(q: np.ndarray) -> np.ndarray:
    return np.where(q >= PP_TOE, np.power(np.maximum(q, PP_TOE), 1.0 / 1.8), 16.0 * q)


def _np_pp_decode(p: np.ndarray) -> np.ndarray:
    return np.where(p >= 16 * PP_TOE, np.power(np.maximum(p, 16 * PP_TOE), 1.8), p / 16.0)


def np_srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0.04045, ((np.maximum(v, 0.04045) + 0.055) / 1.055) ** 2.4, v / 12.92)


def np_linear_to_srgb(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0.0031308, 1.055 * np.power(np.maximum(v, 0.0031308), 1 / 2.4) - 0.055,
                    12.92 * v)


def _np_sigmoid5(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-5.0 * v))


_LIGHTNESS_T = InterpTable("lightness", np_lightness, 0.0, 1.0, 4096)
_PP_ENCODE_T = InterpTable("pp_encode", _np_pp_encode, 0.0, 1.0, 16384)
_PP_DECODE_T = InterpTable("pp_decode", _np_pp_decode, -1.0, 2.0, 24576)
_SRGB_TO_LIN_T = InterpTable("srgb_to_linear", np_srgb_to_linear, 0.0, 1.0, 4096)
_LIN_TO_SRGB_T = InterpTable("linear_to_srgb", np_linear_to_srgb, 0.0, 1.0, 16384)
# sigmoid(5 v) on the range the Kosugi masks need (v - 1 and v both lie in [-2, 2] there).
_SIGMOID5_T = InterpTable("sigmoid5", _np_sigmoid5, -8.0, 8.0, 8192)


@dataclass(frozen=True)
class Numerics:
    """The elementary functions the ops need. ``lightness``, ``pp_*``, ``srgb``/``linear`` clamp
    their input to [0, 1] (``pp_decode`` to [-1, 2]) in the deterministic set. ``lightness(y,
    scratch=None)`` may keep its intermediates in ``scratch`` buffers (the deterministic set does)."""

    name: str
    exp2: Callable[[torch.Tensor], torch.Tensor]
    lightness: Callable[..., torch.Tensor]
    pp_encode: Callable[[torch.Tensor], torch.Tensor]
    pp_decode: Callable[[torch.Tensor], torch.Tensor]
    srgb_to_linear: Callable[[torch.Tensor], torch.Tensor]
    linear_to_srgb: Callable[[torch.Tensor], torch.Tensor]
    sigmoid5: Callable[[torch.Tensor], torch.Tensor]


NUMERICS: Registry[Numerics] = Registry("numerics")
NUMERICS.add("exact", Numerics(
    "exact", torch.exp2, lambda y, scratch=None: lightness_formula(y.clamp(0.0, 1.0)), pp_encode_formula,
    pp_decode_formula, srgb_to_linear_formula, linear_to_srgb_formula,
    lambda v: torch.sigmoid(5.0 * v)), help="PyTorch/Kornia functions: accurate, for training")
NUMERICS.add("deterministic", Numerics(
    "deterministic", exp2_deterministic, _LIGHTNESS_T, _PP_ENCODE_T, _PP_DECODE_T, _SRGB_TO_LIN_T,
    _LIN_TO_SRGB_T, _SIGMOID5_T), help="IEEE-exact ops only: batch- and device-invariant bits")


EXACT = NUMERICS.get("exact")
DETERMINISTIC = NUMERICS.get("deterministic")


def cached_table(key: tuple, build: Callable[[], np.ndarray], device: torch.device,
                 dtype: torch.dtype) -> torch.Tensor:
    """Public access to the per-device table cache (LUTs built once per device and dtype)."""
    return _cached(key, build, device, dtype)
