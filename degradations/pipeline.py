"""The degradation pipeline: parameters -> tensors -> flavour ops -> noise -> sRGB.

::

    sRGB -> linear -> [flavour: lrlike = WB -> exposure -> highlights/shadows | kosugi editor]
         -> [noise] -> clamp [0, 1] -> sRGB (float path) or uint8 (export path)

Two entry points share one implementation:

* :func:`degrade` -- float sRGB ``(B, C, H, W)`` in, float sRGB out; differentiable in the image and
  in every parameter tensor; ``exact`` numerics (Kornia transfer functions, ``torch.exp2``).
* :func:`degrade_batch_uint8` -- uint8 in, uint8 out, no autograd; look-up tables and
  ``deterministic`` numerics, so each image's bytes are the same alone or in any batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from degradations.exposure import EXPOSURE_MODES, adjust_exposure
from degradations.kernels import pick
from degradations.kosugi import kosugi_edit
from degradations.noise import poisson_gaussian_noise, standard_normal
from degradations.numerics import NUMERICS, Numerics
from degradations.tone import highlights_shadows
from degradations.transfer import linear_to_uint8, uint8_to_linear
from degradations.uint8_path import degrade_batch, halo_first_order, workspace
from degradations.white_balance import (
    REFERENCE_TEMPERATURE,
    REFERENCE_TINT,
    apply_matrix,
    incremental_to_source,
    white_balance_matrix,
)
from lldif_bench.registry import Registry

# Every per-image numeric parameter and its neutral value (an absent key means neutral).
NEUTRAL = {
    "exposure_ev": 0.0,
    "d_temp": 0.0, "d_tint": 0.0,
    "temperature_k": REFERENCE_TEMPERATURE, "tint": REFERENCE_TINT,
    "highlights": 0.0, "shadows": 0.0,
    "noise_shot": 0.0, "noise_read": 0.0, "cam_gain_r": 1.0, "cam_gain_b": 1.0,
}
WB_MODES = ("none", "incremental", "absolute")
# Values per chunk on the CPU (one 224x224 colour image, 8 of 100x100, 113 of 48x48 grey): a chunk's
# buffers stay near a core's L2 cache (2 MB on the machines measured). Single-core CPU time per
# image against 2^16, 2^17 and 2^19 (issue #21, in-process, interleaved, one run): 2^18 best or
# within 3% at 48 grey, 100 and 224 px; 2^22 (the earlier value) gave about 15% fewer img/s at 100
# and 224 px.
CPU_CHUNK_ELEMENTS = 1 << 18


@dataclass(frozen=True)
class PipelineOptions:
    """Preset-level settings (the same for every image)."""

    flavor: str = "lrlike"
    exposure_mode: str = "gain"
    radius_frac: float = 0.05
    halo: bool = True
    tone_gain_ev: float = 1.5
    k_temp: float = 1.0
    k_tint: float = 1.5
    wb_normalisation: str = "luminance"

    def __post_init__(self) -> None:
        FLAVORS.get(self.flavor)
        if self.exposure_mode not in EXPOSURE_MODES:
            raise ValueError(f"exposure_mode must be one of {', '.join(EXPOSURE_MODES)}, "
                             f"got {self.exposure_mode!r}")
        if self.wb_normalisation not in ("luminance", "green", "none"):
            raise ValueError(f"wb_normalisation must be luminance, green or none, "
                             f"got {self.wb_normalisation!r}")
        if not 0.0 <= self.radius_frac <= 0.5:
            raise ValueError(f"radius_frac must lie in [0, 0.5], got {self.radius_frac}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def params_to_tensors(params_list: Sequence[Mapping[str, Any]], device: torch.device | str = "cpu"
                      ) -> dict[str, Any]:
    """Per-image parameter dicts -> ``(B,)`` float64 tensors (absent keys are neutral).

    Also returns ``wb_mode`` (list of str) and ``noise_seed`` (list of int).
    """
    keys, neutrals = list(NEUTRAL), list(NEUTRAL.values())
    rows = [list(map(p.get, keys, neutrals)) for p in params_list]  # (C-level loops: per-call cost)
    for row in rows:
        if None in row:  # a key present with value None is neutral too
            row[:] = [n if v is None else v for v, n in zip(row, neutrals)]
    # one NumPy conversion for all keys (torch.tensor on nested lists is several times slower)
    table = np.array(rows, dtype=np.float64).reshape(len(params_list), len(keys)).T.copy()
    out: dict[str, Any] = dict(zip(keys, torch.from_numpy(table).to(device).unbind(0)))
    modes = []
    for p in params_list:
        mode = p.get("wb_mode") or ("incremental" if ("d_temp" in p or "d_tint" in p) else
                                    "absolute" if ("temperature_k" in p or "tint" in p) else "none")
        if mode not in WB_MODES:
            raise ValueError(f"wb_mode must be one of {', '.join(WB_MODES)}, got {mode!r}")
        modes.append(mode)
    out["wb_mode"] = modes
    out["noise_seed"] = [int(p.get("noise_seed", 0)) for p in params_list]
    return out


def select_params(t: Mapping[str, Any], order: torch.Tensor) -> dict[str, Any]:
    """The images ``order`` of :func:`params_to_tensors`' result, in that order."""
    positions = order.tolist()
    return {key: value.index_select(0, order) if isinstance(value, torch.Tensor) else [value[i] for i in positions]
            for key, value in t.items()}


def _tensor(t: Mapping[str, Any], key: str, like: torch.Tensor) -> torch.Tensor:
    v = t.get(key)
    if v is None:
        return torch.full((like.shape[0],), float(NEUTRAL[key]), dtype=torch.float64, device=like.device)
    return v


def wb_matrices(t: Mapping[str, Any], opts: PipelineOptions, like: torch.Tensor,
                matrix: Callable[..., torch.Tensor] = white_balance_matrix) -> torch.Tensor:
    """Per-image white-balance matrices ``(B, 3, 3)`` (float64); the identity where WB is off.
    ``matrix``: :func:`~degradations.white_balance.white_balance_matrix` or a kernel with its bits
    (the uint8 path's pick of the ``white_balance`` op, :mod:`degradations.kernels`)."""
    b = like.shape[0]
    modes = t.get("wb_mode") or ["incremental" if "d_temp" in t or "d_tint" in t else
                                 "absolute" if "temperature_k" in t or "tint" in t else "none"] * b
    inc_m, inc_t = incremental_to_source(_tensor(t, "d_temp", like), _tensor(t, "d_tint", like),
                                         k_temp=opts.k_temp, k_tint=opts.k_tint)
    abs_m = 1.0e6 / _tensor(t, "temperature_k", like)
    abs_t = _tensor(t, "tint", like)
    is_abs = torch.tensor([m == "absolute" for m in modes], device=like.device)
    mired = torch.where(is_abs, abs_m, inc_m)
    tint = torch.where(is_abs, abs_t, inc_t)
    m = matrix(mired, tint, normalisation=opts.wb_normalisation)
    on = torch.tensor([mode != "none" for mode in modes], device=like.device)
    eye = torch.eye(3, dtype=m.dtype, device=m.device).expand(b, 3, 3)
    return torch.where(on[:, None, None], m, eye)


Flavor = Callable[[torch.Tensor, Mapping[str, Any], PipelineOptions, Numerics], torch.Tensor]
FLAVORS: Registry[Flavor] = Registry("degradation flavour")


@FLAVORS.register("lrlike", help="Lightroom-like ops in linear light: WB, EV, highlights/shadows")
def lrlike_flavor(lin: torch.Tensor, t: Mapping[str, Any], opts: PipelineOptions,
                  num: Numerics) -> torch.Tensor:
    ev = _tensor(t, "exposure_ev", lin)
    if lin.shape[1] == 3:
        m = wb_matrices(t, opts, lin)
        if opts.exposure_mode == "gain":  # fold the exposure gain into the matrix: one pass
            lin = apply_matrix(lin, m * num.exp2(ev.to(torch.float64))[:, None, None])
        else:
            lin = adjust_exposure(apply_matrix(lin, m), ev, mode=opts.exposure_mode, num=num)
    else:  # grey: white balance is undefined; luminance ops act on the single channel
        lin = adjust_exposure(lin, ev, mode=opts.exposure_mode, num=num)
    hl, sh = _tensor(t, "highlights", lin), _tensor(t, "shadows", lin)
    if hl.requires_grad or sh.requires_grad or bool((hl != 0).any() or (sh != 0).any()):
        lin = highlights_shadows(lin, hl, sh, radius_frac=opts.radius_frac, halo=opts.halo,
                                 gain_ev=opts.tone_gain_ev, num=num)
    return lin


@FLAVORS.register("kosugi", help="Kosugi & Yamasaki (AAAI 2020) Lightroom-imitating editor")
def kosugi_flavor(lin: torch.Tensor, t: Mapping[str, Any], opts: PipelineOptions,
                  num: Numerics) -> torch.Tensor:
    if any(m == "absolute" for m in t.get("wb_mode") or []):
        raise ValueError("the kosugi flavour has relative temperature/tint sliders only; "
                         "use d_temp/d_tint (crs:IncrementalTemperature/Tint), not Kelvin")
    return kosugi_edit(lin, _tensor(t, "exposure_ev", lin), _tensor(t, "d_temp", lin) / 100.0,
                       _tensor(t, "d_tint", lin) / 100.0, _tensor(t, "highlights", lin) / 100.0,
                       _tensor(t, "shadows", lin) / 100.0, num=num)


def add_noise(lin: torch.Tensor, t: Mapping[str, Any]) -> torch.Tensor:
    """The sensor-noise stage; the exact identity for images whose shot and read are 0."""
    shot, read = _tensor(t, "noise_shot", lin), _tensor(t, "noise_read", lin)
    if not (shot.requires_grad or read.requires_grad or bool((shot > 0).any() or (read > 0).any())):
        return lin
    b, c, h, w = lin.shape
    seeds = t.get("noise_seed") or [0] * b
    eps = standard_normal(list(seeds), (c, h, w), lin.device, lin.dtype)
    if c == 3:
        ones = torch.ones_like(shot)
        gains = torch.stack([_tensor(t, "cam_gain_r", lin), ones, _tensor(t, "cam_gain_b", lin)], 1)
    else:
        gains = None
    return poisson_gaussian_noise(lin, shot, read, eps, gains)


def degrade_linear(lin: torch.Tensor, t: Mapping[str, Any], options: PipelineOptions,
                   num: Numerics) -> torch.Tensor:
    """Linear light in, linear light out (clamped to [0, 1])."""
    _check_images(lin)
    lin = FLAVORS.get(options.flavor)(lin, t, options, num)
    lin = add_noise(lin, t)
    return lin.clamp(0.0, 1.0)


def degrade(images: torch.Tensor, params: Mapping[str, Any] | Sequence[Mapping[str, Any]], *,
            options: PipelineOptions | None = None, numerics: str = "exact") -> torch.Tensor:
    """Degrade float sRGB images ``(B, C, H, W)`` in [0, 1] (C = 1 or 3; float16/32/64).

    ``params``: a list of per-image dicts (as :meth:`Preset.sample` returns) or a dict of ``(B,)``
    tensors (which may require grad), e.g. ``{"exposure_ev": ev, "highlights": h, ...}``.
    Returns float sRGB in [0, 1], differentiable in ``images`` and in the tensors.
    """
    options = options or PipelineOptions()
    num = NUMERICS.get(numerics)
    t = params_to_tensors(params, images.device) if isinstance(params, Sequence) else params
    lin = num.srgb_to_linear(images)
    return num.linear_to_srgb(degrade_linear(lin, t, options, num))


def degrade_batch_uint8(images: torch.Tensor, params_list: Sequence[Mapping[str, Any]], *,
                        preset: Any = None) -> torch.Tensor:
    """Degrade uint8 sRGB ``(B, C, H, W)`` (C = 1 or 3, any device) -> uint8, same device.

    ``params_list`` holds one :meth:`Preset.sample` dict per image; ``preset`` supplies the
    preset-level options (flavour, radius, ...); without it the defaults apply. An image's bytes
    are identical whether it is processed alone or inside any batch.
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"degrade_batch_uint8 needs uint8 images, got {images.dtype}")
    _check_images(images)
    if len(params_list) != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {len(params_list)} parameter dicts")
    options = preset.options if preset is not None else PipelineOptions(
        flavor=str(params_list[0].get("flavor", "lrlike")) if params_list else "lrlike")
    # Results are batch-invariant, so the CPU path may work in cache-sized chunks.
    b, c, h, w = images.shape
    step = b if images.device.type != "cpu" else max(1, CPU_CHUNK_ELEMENTS // (c * h * w))
    if b == 0:
        return images.clone()
    if options.flavor == "lrlike" and options.exposure_mode == "gain":
        with torch.no_grad():
            t = params_to_tensors(params_list, images.device)
            ws = workspace(images.device)
            out = torch.empty(images.shape, dtype=torch.uint8, device=images.device)
            # with one image per chunk the order groups nothing: no copies
            order = halo_first_order(t, options) if step > 1 else None
            if order is None:
                x, y = images, out
            else:  # images are independent: any processing order gives the same bytes
                x = _take(images, order, ws("batch.in", tuple(images.shape), torch.uint8))
                y, t = ws("batch.out", tuple(images.shape), torch.uint8), select_params(t, order)
            wb = (wb_matrices(t, options, t["exposure_ev"], pick("white_balance", images.device)) if c == 3
                  else None)
            degrade_batch(x, y, t, options, wb, step)
            if order is not None:  # back to the caller's order (index_copy_ is much slower)
                _take(y, torch.argsort(order), out)
        return out
    outs = []
    with torch.no_grad():
        for s in range(0, b, step):
            lin = uint8_to_linear(images[s:s + step], torch.float32)
            t = params_to_tensors(params_list[s:s + step], images.device)
            outs.append(linear_to_uint8(degrade_linear(lin, t, options, NUMERICS.get("deterministic"))))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def _take(images: torch.Tensor, order: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``images[order]`` into ``out``. On the CPU by NumPy slice copies on the calling thread, a run
    of consecutive images per copy (the halo-first order has few runs): torch's intra-op parallel
    copy waits for every thread of its team, and while other processes keep the cores busy that
    wait was measured at 20-200 ms for 16 images of 224x224 (the copy itself takes 0.2 ms);
    ``np.take`` along the first axis took 1 ms there."""
    if images.device.type != "cpu" or not (images.is_contiguous() and out.is_contiguous()):
        return torch.index_select(images, 0, order, out=out)
    src, dst = images.numpy(), out.numpy()
    positions = order.tolist()
    start = 0
    for i in range(1, len(positions) + 1):
        if i == len(positions) or positions[i] != positions[i - 1] + 1:
            dst[start:i] = src[positions[start]:positions[i - 1] + 1]
            start = i
    return out


def _check_images(x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (B, C, H, W) with C = 1 or 3, got {tuple(x.shape)}")
