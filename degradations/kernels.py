"""Interchangeable kernels for the ops of the uint8 path, and which one the CPU runs.

Each op has a small registry of kernels with the same signature: ``torch`` (the reference; the GPU
always runs it), where OpenCV has a matching primitive ``opencv`` (per image, on the CPU only), and
where a fused loop pays ``numba`` (:mod:`degradations.uint8_fused`, exact; CPU only, where numba is
installed). :data:`CPU_CHOICE` names the kernel the CPU runs for each op; ``python
benchmarks/bench_degradations.py --per-op`` times every kernel of every op per image size on the
machine it runs on. The choices are static (not measured at run time), so a dataset's bytes do not
depend on the load of the machine that built it; each OpenCV pick wins by 1.5-7x at 100 and 224 px on
the machine measured and each numba pick by 1.2-20x (README, "Measured performance", Degradations),
with primitives that are fast on any x86 CPU (``LUT``, ``resize``, ``sepFilter2D``; numba's loops
are compiled for the CPU they run on, their arithmetic vectorised, their look-ups plain loads).

The numerics contract (:data:`CONTRACT`): an ``exact`` kernel gives the torch kernel's bits; any
other gives a final uint8 image within one code value of the torch kernels' in at most 0.1% of the
values (the same bound as CPU vs GPU). Every kernel is deterministic per image: an image's result
does not depend on the batch it is in, the chunking or the worker threads, so the bytes are the
same on one machine whatever the batch size or worker count.

Ops (all on contiguous tensors; ``b`` images of a chunk):

* ``decode``: uint8 codes -> linear float32 through the 256-entry table (``cv2.LUT``; exact);
* ``levels``: uint8 codes -> uint8 through per-image 256-entry uint8 tables (the grey path's
  whole pipeline for an image without halo mask or noise, composed into one table; exact; numba's
  one call per chunk where installed, else ``cv2.LUT`` per image, which ties with torch at 48 px);
* ``downsample``: the halo mask's 4x4 block mean (``cv2.resize`` ``INTER_AREA`` after edge
  replication to a multiple of 4);
* ``blur``: the halo mask's separable Gaussian with edge replication (``cv2.sepFilter2D`` with the
  same taps);
* ``upsample``: the halo gain's bilinear upsampling, half-pixel centres, edges clamped
  (``cv2.resize`` ``INTER_LINEAR`` at the exact factor, cropped);
* ``mix``: one output channel of the white-balance/exposure matrix, ``sum_j c_j * lin_j``
  (``cv2.addWeighted`` + ``cv2.scaleAdd``);
* ``colour``: a chunk of colour images from codes to codes (decode, mixes, tone curve, halo gain,
  noise, encode; the torch kernel runs the ops above through their own picks), and ``grey``: a
  chunk of grey images that need the halo mask or noise (per-image table, halo gain, noise,
  encode); ``curves``: a call's per-image tone and halo gain curves (float64 ``exp2`` polynomial at
  257 knots, then float32 segments; once per call, before the pixels). Their ``numba`` kernels (:mod:`degradations.fused`, registered by
  :mod:`degradations.uint8_fused` where numba is installed) make one pass per pixel instead of one
  per op, with the same float32 operations (exact). Both register where their inputs are defined
  (:mod:`degradations.uint8_path`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import cv2
import numpy as np
import torch

from degradations import fused
from lldif_bench.registry import Registry

Scratch = Callable[[str, tuple[int, ...], torch.dtype], torch.Tensor]

# Elements per cv2.LUT call: below OpenCV's threshold for its own thread pool (2**18), so the calls
# stay on the calling thread (the CPU path runs them on its own worker threads).
CV2_LUT_ELEMENTS = 1 << 17


@dataclass(frozen=True)
class Contract:
    """How far a non-exact kernel's final uint8 image may be from the torch kernels' one."""

    max_code_diff: int = 1
    max_fraction: float = 0.001


CONTRACT = Contract()


@dataclass(frozen=True)
class Kernel:
    fn: Callable
    exact: bool  # the torch kernel's bits


OPS = ("decode", "levels", "downsample", "blur", "upsample", "mix", "colour", "grey", "curves", "halo",
       "grey_tables", "white_balance")
KERNELS: dict[str, Registry[Kernel]] = {op: Registry(f"{op} kernel") for op in OPS}


def register(op: str, name: str, *, exact: bool, help: str) -> Callable[[Callable], Callable]:
    def decorator(fn: Callable) -> Callable:
        KERNELS[op].add(name, Kernel(fn, exact), help)
        return fn

    return decorator


# The CPU's pick per op. Measured with ``bench_degradations.py --per-op`` (ms per image, torch vs
# OpenCV or numba, 48 grey / 100 / 224 px): see the README's per-machine tables. The fused numba
# kernels where numba is installed (a dependency; without it the torch kernels, the same bytes).
FUSED = "numba" if fused.AVAILABLE else "torch"
CPU_CHOICE: dict[str, str] = {
    "decode": "opencv",
    "levels": "numba" if fused.AVAILABLE else "opencv",
    "downsample": "opencv",
    "blur": "opencv",
    "upsample": "opencv",
    "mix": "torch",
    "colour": FUSED,
    "grey": FUSED,
    "curves": FUSED,
    "halo": FUSED,
    "grey_tables": FUSED,
    "white_balance": FUSED,
}


def cpu_kernels() -> dict[str, str]:
    """The kernels the CPU runs, ``{op: name}`` (recorded on a dataset card), with OpenCV's version
    and numba's (``None`` without numba)."""
    return {**{op: CPU_CHOICE[op] for op in OPS}, "opencv_version": cv2.__version__,
            "numba_version": fused.VERSION}


_OVERRIDE: dict[str, str] | None = None


def active_choice() -> dict[str, str]:
    """:data:`CPU_CHOICE`, or the override of :func:`use_kernels` (tests and benchmarks)."""
    return _OVERRIDE or CPU_CHOICE


class use_kernels:
    """``with use_kernels(op=name, ...)``: run those kernels on the CPU inside the block (or
    ``use_kernels.all("torch")`` for every op); not thread-safe, for tests and benchmarks."""

    def __init__(self, **picks: str) -> None:
        for op, name in picks.items():
            KERNELS[op].get(name)
        self.picks = picks

    @classmethod
    def all(cls, name: str) -> use_kernels:
        return cls(**{op: name if name in KERNELS[op] else CPU_CHOICE[op] for op in OPS})

    def __enter__(self) -> Self:
        global _OVERRIDE
        self._saved = _OVERRIDE
        _OVERRIDE = {**active_choice(), **self.picks}
        return self

    def __exit__(self, *exc: object) -> None:
        global _OVERRIDE
        _OVERRIDE = self._saved


def pick(op: str, device: torch.device) -> Callable:
    """The kernel function the uint8 path runs for ``op`` on ``device``: the active choice
    (:data:`CPU_CHOICE` unless :func:`use_kernels` says otherwise) on the CPU, ``torch`` elsewhere."""
    return KERNELS[op].get(active_choice()[op] if device.type == "cpu" else "torch").fn


def _planes(t: torch.Tensor) -> np.ndarray:
    """A contiguous CPU ``(b, 1, h, w)`` tensor as ``b`` NumPy ``(h, w)`` planes (no copy)."""
    return t.numpy().reshape(t.shape[0], t.shape[-2], t.shape[-1])


# ----------------------------------------------------------------------------- decode

@register("decode", "torch", exact=True, help="int32 copy of the codes and a gather")
def decode_torch(codes: torch.Tensor, out: torch.Tensor, index: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    index.copy_(codes)
    torch.index_select(table, 0, index.view(-1), out=out.view(-1))
    return out


@register("decode", "opencv", exact=True, help="cv2.LUT (uint8 -> float32 table), in pieces")
def decode_opencv(codes: torch.Tensor, out: torch.Tensor, index: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    src = codes.contiguous().numpy().reshape(-1)
    dst = out.numpy().reshape(-1)
    lut = table.numpy()
    for start in range(0, src.size, CV2_LUT_ELEMENTS):
        stop = min(start + CV2_LUT_ELEMENTS, src.size)
        cv2.LUT(src[start:stop].reshape(1, -1), lut, dst=dst[start:stop].reshape(1, -1))
    return out


# ----------------------------------------------------------------------------- levels (grey)

@register("levels", "torch", exact=True, help="int32 index with per-image offsets and a gather")
def levels_torch(codes: torch.Tensor, out: torch.Tensor, tables: torch.Tensor, first: int, ws: Scratch) -> torch.Tensor:
    """``out[k] = tables[first + k][codes[k]]``: ``tables`` flat, 256 entries per image."""
    shape = tuple(codes.shape)
    idx = ws("levels.index", shape, torch.int32).copy_(codes)
    offsets = torch.arange(first, first + shape[0], dtype=torch.int32, device=codes.device) * 256
    idx.add_(offsets.view(-1, *([1] * (len(shape) - 1))))
    torch.index_select(tables, 0, idx.view(-1), out=out.view(-1))
    return out


@register("levels", "opencv", exact=True, help="cv2.LUT per image (uint8 -> uint8 table)")
def levels_opencv(codes: torch.Tensor, out: torch.Tensor, tables: torch.Tensor, first: int, ws: Scratch) -> torch.Tensor:
    b = codes.shape[0]
    src, dst = codes.contiguous().numpy().reshape(b, -1), out.numpy().reshape(b, -1)
    lut = tables.numpy().reshape(-1, 256)
    for k in range(b):
        cv2.LUT(src[k:k + 1], lut[first + k], dst=dst[k:k + 1])
    return out


# ----------------------------------------------------------------------------- halo mask

@register("downsample", "torch", exact=True, help="edge replication and avg_pool2d")
def downsample_torch(lum: torch.Tensor, f: int, ws: Scratch) -> torch.Tensor:
    from degradations.tone import downsample_area

    return downsample_area(lum, f)


@register("downsample", "opencv", exact=False,
          help="cv2.resize INTER_AREA on the chunk's images stacked (per image with cv2.copyMakeBorder "
               "where a side is not a multiple of the factor)")
def downsample_opencv(lum: torch.Tensor, f: int, ws: Scratch) -> torch.Tensor:
    if f == 1:
        return lum
    b, _, h, w = lum.shape
    hs, wsz = -(-h // f), -(-w // f)
    out = ws("downsample.out", (b, 1, hs, wsz), torch.float32)
    src, dst = _planes(lum), _planes(out)
    ph, pw = hs * f - h, wsz * f - w
    if not (ph or pw):  # f x f blocks never straddle two stacked images: one call for the chunk
        cv2.resize(src.reshape(b * h, w), (wsz, b * hs), dst=dst.reshape(b * hs, wsz), interpolation=cv2.INTER_AREA)
        return out
    for k in range(b):
        plane = cv2.copyMakeBorder(src[k], 0, ph, 0, pw, cv2.BORDER_REPLICATE)
        cv2.resize(plane, (wsz, hs), dst=dst[k], interpolation=cv2.INTER_AREA)
    return out


@register("blur", "torch", exact=True, help="fixed-order sums of shifted slices")
def blur_torch(small: torch.Tensor, sigma: float, ws: Scratch) -> torch.Tensor:
    from degradations.tone import gaussian_blur

    return gaussian_blur(small, sigma, ws)


@functools.lru_cache(maxsize=64)
def _taps32(sigma: float) -> np.ndarray:
    from degradations.tone import _gauss_taps

    return np.asarray(_gauss_taps(sigma), dtype=np.float32)


@register("blur", "opencv", exact=False,
          help="cv2.sepFilter2D with the same taps on the chunk's images stacked, each edge-replicated")
def blur_opencv(small: torch.Tensor, sigma: float, ws: Scratch) -> torch.Tensor:
    """One call for the chunk: each image gets ``r`` replicated rows above and below (what
    ``BORDER_REPLICATE`` would give it alone), the images are stacked, filtered, and the padding
    rows are cut off; columns use OpenCV's own ``BORDER_REPLICATE``."""
    if sigma < 0.3:
        return small
    taps = _taps32(sigma)
    r = len(taps) // 2
    b, _, h, w = small.shape
    out = ws("blur.out", tuple(small.shape), torch.float32)
    src, dst = _planes(small), _planes(out)
    padded = ws("blur.padded", (b, h + 2 * r, w), torch.float32).numpy()
    padded[:, r:r + h] = src
    padded[:, :r] = src[:, :1]
    padded[:, r + h:] = src[:, h - 1:h]
    filtered = ws("blur.filtered", (b, h + 2 * r, w), torch.float32).numpy()
    cv2.sepFilter2D(padded.reshape(-1, w), cv2.CV_32F, taps, taps, dst=filtered.reshape(-1, w),
                    borderType=cv2.BORDER_REPLICATE)
    dst[:] = filtered[:, r:r + h]
    return out


@register("upsample", "torch", exact=True, help="gathers and exact ops (columns, then rows)")
def upsample_torch(small: torch.Tensor, size: tuple[int, int], f: int, ws: Scratch) -> torch.Tensor:
    from degradations.tone import upsample_bilinear

    return upsample_bilinear(small, size, f, scratch=ws)


@register("upsample", "opencv", exact=False, help="cv2.resize INTER_LINEAR at the exact factor, cropped, per image")
def upsample_opencv(small: torch.Tensor, size: tuple[int, int], f: int, ws: Scratch) -> torch.Tensor:
    if f == 1:
        return small
    b = small.shape[0]
    h, w = size
    out = ws("upsample.out", (b, 1, h, w), torch.float32)
    src, dst = _planes(small), _planes(out)
    exact_fit = small.shape[-2] * f == h and small.shape[-1] * f == w
    for k in range(b):
        if exact_fit:  # the scale is then exactly f (OpenCV derives it from the sizes)
            cv2.resize(src[k], (w, h), dst=dst[k], interpolation=cv2.INTER_LINEAR)
        else:  # an explicit factor keeps the scale exactly f; the extra rows/columns are cut off
            dst[k] = cv2.resize(src[k], None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR)[:h, :w]
    return out


# ----------------------------------------------------------------------------- colour mix

@register("mix", "torch", exact=True, help="per-image broadcast mul and add over the chunk")
def mix_torch(channels: list[torch.Tensor], coefs: list[torch.Tensor], dst: torch.Tensor,
              tmp: torch.Tensor) -> torch.Tensor:
    """``dst = c_0 * lin_0 + c_1 * lin_1 + ...`` (left to right); ``coefs[j]`` ``(b, 1, 1, 1)``."""
    torch.mul(channels[0], coefs[0], out=dst)
    for ch, coef in zip(channels[1:], coefs[1:]):
        dst.add_(torch.mul(ch, coef, out=tmp))
    return dst


@register("mix", "opencv", exact=False, help="cv2.addWeighted + cv2.scaleAdd per image")
def mix_opencv(channels: list[torch.Tensor], coefs: list[torch.Tensor], dst: torch.Tensor,
               tmp: torch.Tensor) -> torch.Tensor:
    if len(channels) == 1:
        return mix_torch(channels, coefs, dst, tmp)
    b = dst.shape[0]
    base = channels[0]  # channels j are views lin[:, j:j + 1] of one contiguous (b, C, h, w) tensor
    full = base.as_strided((b, len(channels), base.shape[-2], base.shape[-1]),
                           (base.stride(0), base.stride(1), base.stride(2), base.stride(3))).numpy()
    c = torch.cat([k.view(-1, 1) for k in coefs], 1).to(torch.float64).numpy()
    out = _planes(dst)
    for k in range(b):
        cv2.addWeighted(full[k, 0], float(c[k, 0]), full[k, 1], float(c[k, 1]), 0.0, dst=out[k])
        if len(channels) > 2:
            cv2.scaleAdd(full[k, 2], float(c[k, 2]), out[k], dst=out[k])
    return dst
