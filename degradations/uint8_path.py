"""The uint8 export path of the ``lrlike`` flavour with exposure mode ``gain``, arranged for speed.

The same ops as :func:`degradations.pipeline.degrade_linear` with ``deterministic`` numerics
(decode table, white-balance matrix with the exposure folded in, highlights/shadows as per-image gain
curves, Poisson-Gaussian noise, encode table), in an order that makes few passes over the pixels:

* per-image constants (matrices, gain curves, noise scales) are computed once per call, on
  ``(B,)``-sized tensors (on the CPU with one torch thread); pixels
  are then processed in chunks of bounded size (a few MB of buffers, about a core's L2 cache);
  large buffers, the constants' included, are reused between calls (a fresh large allocation
  costs page faults);
* images that need the halo mask come first (:func:`halo_first_order`), so chunks without them
  skip it;
* each op with more than one implementation runs the kernel :mod:`degradations.kernels` picks
  (OpenCV or numba where it is faster on the CPU, torch elsewhere): the decode table, the grey
  tables, the halo mask's block mean, blur and upsampling, the colour mix, the per-image gain
  curves, and a whole chunk's pixels (``colour``; ``grey`` for grey chunks with a halo mask or
  noise): on the CPU the fused numba kernels of :mod:`degradations.uint8_fused` do in one pass per
  pixel what the torch kernels below do in one pass per op, with the same bits;
* colour: luminance comes straight from the decoded input through the row ``BT.709 . M`` of each
  image's matrix, so the tone gain is known before the output channels are formed;
* grey: everything before the halo mask is a function of the pixel's code alone, so it is a
  per-image 256-entry table (evaluated with the very same operations, hence the same bits); for an
  image without halo mask or noise the whole path is one per-image 256-entry uint8 table;
* the halo part of highlights/shadows is a gain evaluated at the mask's 1/4 resolution and then
  upsampled;
* the encoder's scale (twice 65,535: see :data:`ENCODE_SCALE`) is folded into the gain curve (or,
  for an image without tone sliders, into its matrix), so an output channel is three products and
  two sums, one product by the gain, then clamp, truncate and a 131,071-entry table.

On the CPU with more than one torch thread, the images are split between that many threads (the
caller and workers, one torch thread each; :mod:`degradations.cpu_threads` says why); one torch
thread (e.g. make-dataset's worker processes) runs everything on the calling thread.

Only IEEE-exact elementwise operations (each a single ``+ - * /``, ``sqrt``, clamp or conversion,
never fused multiply-adds) and gathers touch the pixels in the torch kernels, and every per-image
choice is made per image, so an image's bytes are the same alone or in any batch; the OpenCV
kernels that are not bit-exact stay within one code value of them (:data:`degradations.kernels.CONTRACT`)
and are deterministic per image as well.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from degradations.cpu_threads import on_one_thread, run_slices
from degradations.kernels import pick, register
from degradations.noise import standard_normal
from degradations.numerics import DETERMINISTIC, cached_table, exp2_deterministic
from degradations.tone import (
    gain_table,
    lightness_knots,
    mask_downscale,
    split_slider,
    sqrt_lightness_knots,
)
from degradations.transfer import BT709, ENCODE_LUT_SIZE, decode_lut, decode_uint8_into, encode_lut
from degradations.white_balance import white_balance_matrix

# the colour images' white-balance matrices of a call (float64): torch's ops here, numba's kernel in
# degradations.uint8_fused
register("white_balance", "torch", exact=True, help="float64 torch ops on (B,)-sized tensors")(white_balance_matrix)

# The path works in twice the encoder's units: every value is exactly twice what it would be in
# encoder units (scaling by a power of two commutes with float rounding), and
# floor(v / 2 + 0.5) = (floor(v) + 1) // 2 for v >= 0, so the encoder's round-half-up becomes a
# truncation into a table of twice the size (:func:`half_step_encode_lut`): one pass per channel
# fewer, the same bytes.
ENCODE_SCALE = 2.0 * (ENCODE_LUT_SIZE - 1)
LEVELS = 256
F32 = torch.float32
F64 = torch.float64


class Workspace:
    """Named buffers reused by the chunks of a call (views of the largest chunk's so far)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._buffers: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        numel = math.prod(shape)
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < numel or buf.dtype != dtype:
            buf = torch.empty(numel, dtype=dtype, device=self.device)
            self._buffers[name] = buf
        return buf[:numel].view(shape)


_THREAD = threading.local()


def workspace(device: torch.device) -> Workspace:
    """The calling thread's buffers for ``device``. On the CPU they persist between calls: fresh
    large allocations there are returned to the OS and faulted in again page by page on every call
    (measured: half the time of a call on 48x48 images). On other devices a new one per call (their
    caching allocators already reuse memory)."""
    if device.type != "cpu":
        return Workspace(device)
    ws = getattr(_THREAD, "cpu", None)
    if ws is None:
        ws = _THREAD.cpu = Workspace(device)
    return ws


@dataclass(frozen=True)
class Curves:
    """Per-image piecewise-linear curves on [0, 1] with ``n`` segments each, flattened with
    ``n + 1`` entries per image: image ``b``'s segment ``i`` is ``base[b * (n + 1) + i] +
    slope[b * (n + 1) + i] * frac``; entry ``n`` (slope 0, base = the last segment's end, the same
    float32 sum) serves the inputs at exactly 1, so no index needs clamping."""

    base: torch.Tensor
    slope: torch.Tensor
    n: int

    @classmethod
    def from_samples(cls, table: torch.Tensor, ws: Workspace, tag: str) -> Curves:
        """``table`` ``(B, n + 1)``: each image's curve sampled at ``n + 1`` equidistant knots (any
        float dtype; the curves are float32, in ``ws``'s ``{tag}.*`` buffers)."""
        b, n = table.shape[0], table.shape[1] - 1
        samples = ws(f"{tag}.samples", tuple(table.shape), F32).copy_(table)
        base = ws(f"{tag}.base_knots", (b, n + 1), F32)
        base[:, :n].copy_(samples[:, :-1])
        slope = ws(f"{tag}.slope_knots", (b, n + 1), F32)
        torch.sub(samples[:, 1:], samples[:, :-1], out=slope[:, :n])
        slope[:, n].zero_()
        # at x = 1 the segments evaluate slope[n - 1] * 1 + base[n - 1]: that sum, stored
        torch.add(slope[:, n - 1], base[:, n - 1], out=base[:, n])
        return cls(base.view(-1), slope.view(-1), n)

    def evaluate(self, x: torch.Tensor, first: int, out: torch.Tensor, ws: Workspace, tag: str, *,
                 sqrt: bool = False, scaled: bool = False,
                 names: tuple[str, str, str] | None = None) -> torch.Tensor:
        """Image ``first + k``'s curve at ``x[k]`` (clamped to [0, 1]; its square root if ``sqrt``)
        into ``out`` (the same values as :func:`degradations.numerics.per_image_curve`: below 1
        the same ops; at 1 the stored end point, the sum that function computes there). With
        ``sqrt`` and ``scaled``, ``x`` holds ``n**2`` times the values (a power of 4, so the square
        root of the clamped ``x`` is exactly ``n`` times theirs: one multiplication fewer, the same
        bits). Its three scratch buffers are ``ws``'s ``{tag}.pos``, ``{tag}.base`` (float32) and
        ``{tag}.index`` (int32), or the buffers ``names`` in that order (a caller's free ones: a
        smaller working set stays in the CPU's cache)."""
        n = self.n
        shape = tuple(x.shape)
        pos_name, base_name, index_name = names or (f"{tag}.pos", f"{tag}.base", f"{tag}.index")
        pos = ws(pos_name, shape, F32)
        if sqrt and scaled:
            torch.clamp(x, 0.0, float(n * n), out=pos).sqrt_()
        else:
            torch.clamp(x, 0.0, 1.0, out=pos)
            if sqrt:
                pos.sqrt_()
            pos.mul_(float(n))
        flat = ws(index_name, shape, torch.int32)
        flat.copy_(pos)  # truncation = floor for non-negative values; n at x = 1
        pos.frac_()  # pos - trunc(pos), exact: the fraction within the segment (0 at x = 1)
        slope_t, base_t = self.slope, self.base
        if shape[0] == 1:  # one image: its own tables, no offsets to add
            slope_t, base_t = (t.narrow(0, first * (n + 1), n + 1) for t in (slope_t, base_t))
        else:
            flat.add_(_image_offsets(first, shape, n + 1, x.device))
        torch.index_select(slope_t, 0, flat.view(-1), out=out.view(-1))
        base = ws(base_name, shape, F32)
        torch.index_select(base_t, 0, flat.view(-1), out=base.view(-1))
        return out.mul_(pos).add_(base)


def _image_offsets(first: int, shape: tuple[int, ...], stride: int, device: torch.device) -> torch.Tensor:
    """``(first + k) * stride`` for image k of a chunk, shaped to broadcast over ``shape``."""
    offsets = torch.arange(first, first + shape[0], dtype=torch.int32, device=device) * stride
    return offsets.view(-1, *([1] * (len(shape) - 1)))


@dataclass(frozen=True)
class Plan:
    """Per-image constants of one call; ``(B, ...)`` tensors on the images' device."""

    mix: list[list[torch.Tensor]]  # mix[i][j] (B,1,1,1): output channel i gets mix[i][j] * input j
    lum: list[torch.Tensor]        # lum[j] (B,1,1,1): luminance (linear units) of the mixed image
    tone: Curves | None            # gain of luminance, in encoder units where the image has tone
    has_tone: list[bool]
    local: Curves | None           # halo gain of the blurred lightness (1 where |slider| <= 50)
    has_local: list[bool]
    radius_frac: float
    noise: dict[str, Any] | None   # shot/read in encoder units, camera gains, seeds
    has_noise: list[bool]
    levels: dict[str, torch.Tensor] | None  # grey only: per-image tables of the 256 codes (u8: the
                                            # whole path for an image without halo mask or noise)
    matrix: torch.Tensor | None = None      # colour only: (B, 3, 3) float32, mix[i][j] = its [:, i, j]
    lum_row: torch.Tensor | None = None     # colour only: (B, 3) float32, lum[j] = its [:, j]


def _col(v: torch.Tensor) -> torch.Tensor:
    return v.to(F32).contiguous().view(-1, 1, 1, 1)


def make_plan(t: Mapping[str, Any], options: Any, channels: int, like: torch.Tensor,
              wb: torch.Tensor | None) -> Plan:
    """The per-image constants for ``t`` (as :func:`~degradations.pipeline.params_to_tensors`
    returns); ``wb`` holds the ``(B, 3, 3)`` white-balance matrices for colour images. On the CPU
    computed with one torch thread (:func:`~degradations.cpu_threads.on_one_thread`). The large
    constants live in the calling thread's :func:`workspace` (``plan.*`` buffers), so they are
    valid until its next call."""
    threads = torch.get_num_threads() if like.device.type == "cpu" else 1
    ws = workspace(like.device)
    return on_one_thread(lambda: _make_plan(t, options, channels, like, wb, ws), threads)


def _make_plan(t: Mapping[str, Any], options: Any, channels: int, like: torch.Tensor,
               wb: torch.Tensor | None, ws: Workspace) -> Plan:
    ev = t["exposure_ev"].to(F64)
    gain = exp2_deterministic(ev)
    hl, sh = t["highlights"].to(F64), t["shadows"].to(F64)
    has_tone_t = (hl != 0) | (sh != 0)
    # images with tone get the encoder scale in their gain curve, the others in their matrix
    scale = torch.where(has_tone_t, torch.ones_like(ev), torch.full_like(ev, ENCODE_SCALE))
    if channels == 3:
        m = wb * gain[:, None, None]
        lum_w = m[:, 0, :] * BT709[0] + m[:, 1, :] * BT709[1] + m[:, 2, :] * BT709[2]
        mix32 = (m * scale[:, None, None]).to(F32)
        lum32 = lum_w.to(F32)
        mix = [[mix32[:, i, j].view(-1, 1, 1, 1) for j in range(3)] for i in range(3)]
        lum = [lum32[:, j].view(-1, 1, 1, 1) for j in range(3)]
    else:
        mix = [[_col(gain * scale)]]
        lum = [_col(gain)]
        mix32 = lum32 = None
    k = options.tone_gain_ev / 100.0
    tone = local = None
    has_tone = has_tone_t.tolist()
    has_local = [False] * len(has_tone)
    if any(has_tone):
        h1, h2 = split_slider(hl)
        s1, s2 = split_slider(sh)
        if not (options.halo and options.radius_frac > 0):
            h1, s1, h2, s2 = hl, sh, torch.zeros_like(hl), torch.zeros_like(sh)
        tone_scale = torch.where(has_tone_t, torch.full_like(ev, ENCODE_SCALE), torch.ones_like(ev))
        has_local = needs_halo(t, options).tolist()
        curves = pick("curves", like.device)
        if any(has_local):  # both tables in one pass
            knots = torch.stack([sqrt_lightness_knots(like.device), lightness_knots(like.device)])
            tone, local = curves(torch.stack([s1, s2]).mul_(k), torch.stack([h1, h2]).mul_(k), knots,
                                 torch.stack([tone_scale, torch.ones_like(ev)]), ws, ("plan.tone", "plan.halo"))
        else:
            (tone,) = curves((s1 * k).view(1, -1), (h1 * k).view(1, -1), sqrt_lightness_knots(like.device).view(1, -1),
                             tone_scale.view(1, -1), ws, ("plan.tone",))
    shot, read = t["noise_shot"].to(F64), t["noise_read"].to(F64)
    has_noise_t = (shot > 0) | (read > 0)
    noise = None
    if bool(has_noise_t.any()):
        ones = torch.ones_like(shot)
        gains = [t["cam_gain_r"].to(F64), ones, t["cam_gain_b"].to(F64)] if channels == 3 else [ones]
        noise = {"shot": _col(shot * ENCODE_SCALE), "read": _col(read * (ENCODE_SCALE * ENCODE_SCALE)),
                 "gains": [_col(g) for g in gains], "seeds": list(t.get("noise_seed") or [0] * len(has_tone))}
    plan = Plan(mix, lum, tone, has_tone, local, has_local, options.radius_frac, noise,
                has_noise_t.tolist(), None, mix32, lum32)
    if channels == 1:
        plan = _with_grey_levels(plan, ws)
    return plan


@register("curves", "torch", exact=True, help="float64 gain tables by torch ops (exp2 polynomial), then "
                                              "float32 curves")
def curves_torch(s: torch.Tensor, h: torch.Tensor, knots: torch.Tensor, scale: torch.Tensor, ws: Workspace,
                 tags: tuple[str, ...]) -> list[Curves]:
    """Set ``q``'s per-image gain curves ``scale * 2**(s (1 - L)^2 + h L^2)`` sampled at lightness
    ``knots[q]``, as :class:`Curves` in ``ws``'s ``{tags[q]}.*`` buffers: ``s``, ``h``, ``scale``
    ``(S, B)`` and ``knots`` ``(S, n + 1)``, float64 (:func:`~degradations.tone.gain_table`; the
    product by ``scale`` rounds once, in float64, before the curves' float32)."""
    sets, b = s.shape
    table = gain_table(s.view(sets, b, 1), h.view(sets, b, 1), knots.view(sets, 1, -1), ws)
    table.mul_(scale.view(sets, b, 1))
    return [Curves.from_samples(table[q], ws, tag) for q, tag in enumerate(tags)]


def needs_halo(t: Mapping[str, Any], options: Any) -> torch.Tensor:
    """``(B,)`` bool: which images need the halo mask (a slider beyond +-50 with the halo on)."""
    hl, sh = t["highlights"], t["shadows"]
    if not (options.halo and options.radius_frac > 0):
        return torch.zeros(hl.shape, dtype=torch.bool, device=hl.device)
    return (split_slider(hl)[1] != 0) | (split_slider(sh)[1] != 0)


def halo_first_order(t: Mapping[str, Any], options: Any) -> torch.Tensor | None:
    """A processing order that puts the images needing the halo mask first (stable), or ``None``
    where all or none need it: then only the chunks of those images pay for the mask. Measured with
    ``paper`` (about 40% of the images need it) on the project's 2-core CPU, in-process A/B: 13-28%
    more images/s at 48x48 grey, 100x100 and 224x224 with two threads, 17-18% with one."""
    need = needs_halo(t, options)
    if bool(need.all()) or not bool(need.any()):
        return None
    return torch.argsort((~need).to(torch.uint8), stable=True)


def _with_grey_levels(plan: Plan, ws: Workspace) -> Plan:
    """Tabulate, per image, everything before the halo mask for each of the 256 grey codes: the
    luminance and the (scaled, tone-mapped) output value, with the per-pixel operations (by the
    ``grey_tables`` kernel)."""
    lum, value, codes_u8 = pick("grey_tables", ws.device)(plan, ws)
    return Plan(**{**plan.__dict__, "levels": {"luminance": lum, "value": value, "u8": codes_u8}})


@register("grey_tables", "torch", exact=True, help="the per-pixel torch ops on each image's 256 codes")
def grey_tables_torch(plan: Plan, ws: Workspace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(luminance, value, u8)``, flat, 256 entries per image: each grey code's linear luminance,
    its scaled and tone-mapped value and its final code (for images without halo mask or noise)."""
    b = plan.mix[0][0].shape[0]
    shape = (b, 1, 1, LEVELS)
    codes = decode_lut(ws.device, F32).view(1, 1, 1, LEVELS).expand(shape)
    lum = torch.mul(codes, plan.lum[0], out=ws("plan.levels.luminance", shape, F32))
    value = torch.mul(codes, plan.mix[0][0], out=ws("plan.levels.value", shape, F32))
    if plan.tone is not None:
        value.mul_(plan.tone.evaluate(lum, 0, ws("plan.levels.gain", shape, F32), ws, "plan.levels", sqrt=True))
    # the same ops as _encode_channel and the encoder's gather, on the 256 codes of each image
    encoded = ws("plan.levels.encoded", shape, F32).copy_(value)
    index = ws("plan.levels.index", shape, torch.int32)
    _encode_channel(encoded, index)
    codes_u8 = torch.index_select(half_step_encode_lut(ws.device), 0, index.view(-1),
                                  out=ws("plan.levels.u8", (b * LEVELS,), torch.uint8))
    return lum.reshape(-1), value.reshape(-1), codes_u8


def degrade_batch(x: torch.Tensor, out: torch.Tensor, t: Mapping[str, Any], options: Any,
                  wb: torch.Tensor | None, step: int) -> None:
    """Degrade uint8 images ``x`` into ``out`` with the parameters ``t`` (as
    :func:`~degradations.pipeline.params_to_tensors` returns; ``wb`` the colour images' matrices),
    at most ``step`` images (one chunk) at a time.

    On the CPU with more than one torch thread, the calling thread computes the plan with one torch
    thread (no intra-op team to wait for, no hand-over to a worker), then it and ``threads - 1``
    workers take slices of one chunk each (:func:`degradations.cpu_threads.run_slices` with
    ``caller_joins``). Measured in-process on the 2-core VM under load (other sessions busy, median
    of 9-12 repetitions in rotating order): 1.02-1.30x the img/s of computing a plan per thread's
    slice (which pays the plan's fixed cost once per slice), and slices of a whole chunk
    1.0-1.6x those of half a chunk (fewer, longer ops). Elsewhere one plan and
    :func:`degrade_images`."""
    b, c = x.shape[:2]
    threads = torch.get_num_threads() if x.device.type == "cpu" else 1
    if threads > 1 and b > 1:
        torch.set_num_threads(1)
        try:
            plan = _make_plan(t, options, c, x, wb, workspace(x.device))
        finally:
            torch.set_num_threads(threads)
        # slices of a whole chunk (each thread's working set is a chunk, in its own core's cache)
        # unless that would leave a thread without one
        size = min(step, -(-b // threads))
        per_thread = -(-b // (size * threads))
        run_slices(lambda start, stop: _degrade_span(x, out, plan, 0, start, stop, step, workspace(x.device)),
                   b, threads, per_thread, caller_joins=True)
        return
    degrade_images(x, out, make_plan(t, options, c, x, wb), step, workspace(x.device))


def degrade_images(x: torch.Tensor, out: torch.Tensor, plan: Plan, step: int, ws: Workspace, *,
                   first: int = 0) -> None:
    """Degrade uint8 images ``x`` (images ``first ..`` of the plan) into ``out`` (uint8, same shape),
    at most ``step`` images (one chunk) at a time.

    On the CPU with more than one torch thread, that many worker threads with one torch thread each
    (:mod:`degradations.cpu_threads`; each with its own workspace) take slices of about
    ``step / threads`` images (at least one) as they finish the previous one, with no barrier
    between chunks; the bytes are the same as with one thread. A chunk computes the halo mask for
    all its images if one of them needs it; in the order of :func:`halo_first_order` those images
    come first, so few chunks do (on one thread, the chunks are also cut where those images end)."""
    b = x.shape[0]
    threads = torch.get_num_threads() if x.device.type == "cpu" else 1
    if threads > 1 and b > 1:
        size = -(-step // threads)  # ceil: a thread's share of a chunk
        per_thread = -(-b // (size * threads))  # so that no slice exceeds a thread's share of a chunk
        run_slices(lambda start, stop: _degrade_span(x, out, plan, first, start, stop, step, workspace(x.device)),
                   b, threads, per_thread)
    else:
        for start, stop in _halo_first_runs(plan.has_local[first:first + b]):
            _degrade_span(x, out, plan, first, start, stop, step, ws)


def _halo_first_runs(has_local: list[bool]) -> list[tuple[int, int]]:
    """``[(0, k), (k, b)]`` where the first ``k`` images (and only they) need the halo mask, else
    ``[(0, b)]``."""
    b, k = len(has_local), sum(has_local)
    return [(0, k), (k, b)] if 0 < k < b and all(has_local[:k]) else [(0, b)]


def _degrade_span(x: torch.Tensor, out: torch.Tensor, plan: Plan, first: int, start: int, stop: int,
                  step: int, ws: Workspace) -> None:
    """Images ``start:stop`` of ``x``, at most ``step`` at a time."""
    for s in range(start, stop, step):
        e = min(s + step, stop)
        _degrade_part(x[s:e], out[s:e], plan, first + s, ws)


def _degrade_part(x: torch.Tensor, out: torch.Tensor, plan: Plan, first: int, ws: Workspace) -> None:
    if plan.levels is not None:
        _grey_chunk(x, out, plan, first, ws)
    else:
        _colour_chunk(x, out, plan, first, ws)


def _halo_gain(y: torch.Tensor, plan: Plan, first: int, ws: Workspace, scale: float = 1.0) -> torch.Tensor:
    """The full-resolution halo gain of a chunk from its linear luminance ``y`` (times ``scale``, a
    power of two: its block means are divided by it exactly), by the ``halo`` kernel."""
    return pick("halo", y.device)(y, plan, first, ws, scale)


@register("halo", "torch", exact=True, help="block mean, lightness table, blur, halo curve, upsampling: the "
                                            "mask kernels' picks, torch between them")
def halo_torch(y: torch.Tensor, plan: Plan, first: int, ws: Workspace, scale: float) -> torch.Tensor:
    """:func:`_halo_gain` by the ops of :func:`degradations.tone.blurred_lightness_small`, the block
    mean, blur and upsampling each by its :mod:`~degradations.kernels` kernel."""
    h, w = y.shape[-2:]
    f = mask_downscale(h, w)
    small = pick("downsample", y.device)(y, f, ws)
    if scale != 1.0:
        small = torch.mul(small, 1.0 / scale, out=ws("halo.unscaled", tuple(small.shape), F32))
    small = DETERMINISTIC.lightness(small, ws)
    small = pick("blur", y.device)(small, plan.radius_frac * min(h, w) / f, ws)
    local = plan.local.evaluate(small, first, ws("halo.gain", tuple(small.shape), F32), ws, "halo")
    return pick("upsample", y.device)(local, (h, w), f, ws)


def _wants(flags: list[bool], first: int, last: int) -> bool:
    return any(flags[first:last])


def _grey_chunk(x: torch.Tensor, out: torch.Tensor, plan: Plan, first: int, ws: Workspace) -> None:
    last = first + x.shape[0]
    if not (_wants(plan.has_local, first, last) or (plan.noise is not None and _wants(plan.has_noise, first, last))):
        pick("levels", x.device)(x, out, plan.levels["u8"], first, ws)  # one table per image
        return
    pick("grey", x.device)(x, out, plan, first, ws)


@register("grey", "torch", exact=True, help="gathers of the per-image tables, halo gain, noise, encode: "
                                            "one torch pass per op")
def grey_torch(x: torch.Tensor, out: torch.Tensor, plan: Plan, first: int, ws: Workspace) -> torch.Tensor:
    """Grey images with a halo mask or noise: each pixel's tabulated value, times the halo gain,
    plus the noise, encoded into ``out`` (returned)."""
    b, _, h, w = x.shape
    last = first + b
    plane = (b, 1, h, w)
    idx = ws("index", plane, torch.int32)
    idx.copy_(x).add_(_image_offsets(first, plane, LEVELS, x.device))
    o = torch.index_select(plan.levels["value"], 0, idx.view(-1), out=ws("out", plane, F32).view(-1)).view(plane)
    if plan.local is not None and _wants(plan.has_local, first, last):
        y = ws("luminance", plane, F32)
        torch.index_select(plan.levels["luminance"], 0, idx.view(-1), out=y.view(-1))
        o.mul_(_halo_gain(y, plan, first, ws))
    _finish(o, 0, plan, first, ws, None)
    _encode_channel(o, idx)
    return torch.index_select(half_step_encode_lut(x.device), 0, idx.view(-1), out=out.view(-1)).view(out.shape)


def _colour_chunk(x: torch.Tensor, out: torch.Tensor, plan: Plan, first: int, ws: Workspace) -> None:
    pick("colour", x.device)(x, out, plan, first, ws)


@register("colour", "torch", exact=True, help="decode, colour mixes, tone curve, halo gain, noise, encode: "
                                              "one torch pass per op")
def colour_torch(x: torch.Tensor, out: torch.Tensor, plan: Plan, first: int, ws: Workspace) -> torch.Tensor:
    """One chunk of colour images into ``out`` (returned). Few full-size buffers (about 2 MB for one 224x224 image, a
    CPU core's L2 cache on the machines measured): the tone curve's scratch is the output
    channel's buffers, and each output channel is encoded as soon as it is formed."""
    b, c, h, w = x.shape
    last = first + b
    plane = (b, 1, h, w)
    lin = decode_uint8_into(x, ws("linear", (b, c, h, w), F32), ws("decode.index", (b, c, h, w), torch.int32))
    channels = [lin[:, j:j + 1] for j in range(c)]
    tmp = ws("tmp", plane, F32)
    o = ws("out", plane, F32)
    idx = ws("index", plane, torch.int32)
    mix = pick("mix", x.device)

    def mixed(coefs: list[torch.Tensor], dst: torch.Tensor) -> torch.Tensor:
        return mix(channels, [coef[first:last] for coef in coefs], dst, tmp)

    gain = None
    if plan.tone is not None and _wants(plan.has_tone, first, last):
        # luminance times n**2 (exact: a power of two), for the tone curve's square root
        scale = float(plan.tone.n * plan.tone.n)
        y = mixed([coef * scale for coef in plan.lum], ws("luminance", plane, F32))
        gain = plan.tone.evaluate(y, first, ws("gain", plane, F32), ws, "tone", sqrt=True, scaled=True,
                                  names=("out", "tmp", "index"))
        if plan.local is not None and _wants(plan.has_local, first, last):
            gain.mul_(_halo_gain(y, plan, first, ws, scale))
    eps = _noise_eps(plan, first, last, (c, h, w), x.device)
    table = half_step_encode_lut(x.device)
    codes = out if b == 1 else ws("codes", plane, torch.uint8)  # one image: its channels are contiguous
    for i in range(c):
        mixed(plan.mix[i], o)
        if gain is not None:
            o.mul_(gain)
        _finish(o, i, plan, first, ws, eps)
        _encode_channel(o, idx)
        dst = codes[:, i:i + 1] if b == 1 else codes
        torch.index_select(table, 0, idx.view(-1), out=dst.view(-1))
        if b > 1:
            out[:, i:i + 1].copy_(codes)
    return out


def _noise_eps(plan: Plan, first: int, last: int, shape: tuple[int, ...], device: torch.device
               ) -> torch.Tensor | None:
    if plan.noise is None or not _wants(plan.has_noise, first, last):
        return None
    return standard_normal(plan.noise["seeds"][first:last], shape, device, F32)


def _finish(o: torch.Tensor, channel: int, plan: Plan, first: int, ws: Workspace,
            eps: torch.Tensor | None) -> None:
    """Add the sensor noise (encoder units) to output channel ``channel`` in place."""
    if eps is None:
        if plan.noise is None or not _wants(plan.has_noise, first, first + o.shape[0]):
            return
        eps = _noise_eps(plan, first, first + o.shape[0], tuple(o.shape[1:]), o.device)
    last = first + o.shape[0]
    noise = plan.noise
    g = noise["gains"][channel][first:last]
    var = torch.div(o, g, out=ws("noise.var", tuple(o.shape), F32))
    var.clamp_(min=0.0).mul_(noise["shot"][first:last]).add_(noise["read"][first:last])
    sigma = var.clamp_(min=0.0).sqrt_()
    o.add_(sigma.mul_(eps[:, channel:channel + 1]).mul_(g))


def _encode_channel(o: torch.Tensor, idx: torch.Tensor) -> None:
    """Twice the encoder units -> the index of :func:`half_step_encode_lut` (clamped, truncated)
    into ``idx``: the encoder's round-half-up of ``o / 2``, clamped to its table."""
    o.clamp_(0.0, ENCODE_SCALE)
    idx.copy_(o)  # truncation = floor for non-negative values


def half_step_encode_lut(device: torch.device) -> torch.Tensor:
    """uint8 codes indexed by ``floor(v)`` for ``v`` in twice the encoder's units:
    ``encode_lut[(j + 1) // 2]`` (the encoder rounds ``v / 2`` half up)."""
    def build() -> np.ndarray:
        table = encode_lut(torch.device("cpu")).numpy()
        j = np.arange(int(ENCODE_SCALE) + 1)
        return table[(j + 1) // 2]

    return cached_table(("encode_u8_half_step", ENCODE_LUT_SIZE), build, device, torch.uint8)


# the numba kernels of the ``colour`` and ``grey`` ops register themselves (they need this module's names)
from degradations import uint8_fused  # noqa: F401
