"""Fused per-pixel kernels of the uint8 path, compiled with numba (absent without numba).

The torch kernels of the uint8 path (:mod:`degradations.uint8_path`) make about 40 elementwise
passes and 5 gathers over a chunk's pixels; these kernels make one, per pixel: decode table ->
luminance row -> tone curve -> (halo gain) -> each output channel's matrix row -> gain -> (noise) ->
clamp, truncate -> encode table. Every per-image table and constant comes from the same plan as
the torch kernels', and each value is formed by the same float32 operations in the same order
(``((a0 * c0) + (a1 * c1)) + (a2 * c2)``, never a fused multiply-add: compiled without
``fastmath``, so LLVM neither contracts nor reorders them), so the bytes are the torch kernels'.

Compiled with ``nogil`` (the CPU path's caller and worker threads run them side by side on their own
slices of images) and ``cache`` (the machine code is kept beside this file, so only the first
process on a machine pays the compilation, a few seconds). :data:`AVAILABLE` says whether numba
could be imported; without it the CPU runs the torch kernels (:mod:`degradations.kernels`).
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # the torch kernels serve instead
    numba = None

AVAILABLE = numba is not None
VERSION = numba.__version__ if numba is not None else None


def _compiled(fn):
    """``fn`` compiled in nopython mode without the GIL and cached on disk (``fn`` itself without
    numba: it is then never called)."""
    return numba.njit(nogil=True, cache=True)(fn) if numba is not None else fn


@_compiled
def _noisy(o, g, shot, read, e):
    """Poisson-Gaussian noise as ``uint8_path._finish``: ``o + sqrt(max(max(o / g, 0) * shot +
    read, 0)) * e * g`` (float32, the same operations in the same order)."""
    var = o / g
    if var < 0:
        var = np.float32(0.0)
    var = var * shot + read
    if var < 0:
        var = np.float32(0.0)
    sigma = np.float32(np.sqrt(var))
    return o + (sigma * e) * g


@_compiled
def _encoded(o, top, table):
    """Twice-encoder-units ``o`` -> its uint8 code: clamp to ``[0, top]``, truncate, look up."""
    if o < 0:
        o = np.float32(0.0)
    elif o > top:
        o = top
    return table[np.int32(o)]


@_compiled
def colour_luminance(x, decode, lum, scale, y):
    """``y[k, p]`` = image ``k``'s luminance row ``lum[k] * scale`` (float32, ``scale`` a power of
    two) applied to pixel ``p``'s decoded channels of ``x`` ``(b, 3, hw)`` uint8."""
    b, _, hw = x.shape
    for k in range(b):
        l0, l1, l2 = lum[k, 0] * scale, lum[k, 1] * scale, lum[k, 2] * scale
        for p in range(hw):
            y[k, p] = ((decode[x[k, 0, p]] * l0) + (decode[x[k, 1, p]] * l1)) + (decode[x[k, 2, p]] * l2)


@_compiled
def colour_pixels(x, out, decode, mix, lum, scale, tone, base, slope, n, first, halo, has_halo,
                  noise, eps, gains, shot, read, top, table):
    """Colour images ``x`` ``(b, 3, hw)`` uint8 -> ``out`` (same shape), images ``first ..`` of the plan.

    ``mix`` ``(b, 3, 3)`` and ``lum`` ``(b, 3)``: the images' matrices and luminance rows (float32);
    with ``tone`` every pixel's value is multiplied by the gain curve ``base``/``slope`` (``n``
    segments per image, flat, of the whole plan) at the square root of its luminance times
    ``scale = n**2``, and with ``has_halo`` by ``halo[k, p]`` too; with ``noise``, ``eps`` ``(b, 3,
    hw)``, ``gains`` ``(b, 3)``, ``shot`` and ``read`` ``(b,)`` add the sensor noise. ``top`` and
    ``table``: the encoder's clamp and uint8 table (twice its units)."""
    b, _, hw = x.shape
    nn = np.float32(n * n)
    one = np.float32(1.0)
    for k in range(b):
        l0, l1, l2 = lum[k, 0] * scale, lum[k, 1] * scale, lum[k, 2] * scale
        m00, m01, m02 = mix[k, 0, 0], mix[k, 0, 1], mix[k, 0, 2]
        m10, m11, m12 = mix[k, 1, 0], mix[k, 1, 1], mix[k, 1, 2]
        m20, m21, m22 = mix[k, 2, 0], mix[k, 2, 1], mix[k, 2, 2]
        offset = (first + k) * (n + 1)
        for p in range(hw):
            a0, a1, a2 = decode[x[k, 0, p]], decode[x[k, 1, p]], decode[x[k, 2, p]]
            gain = one
            if tone:
                pos = ((a0 * l0) + (a1 * l1)) + (a2 * l2)
                if pos < 0:
                    pos = np.float32(0.0)
                elif pos > nn:
                    pos = nn
                pos = np.float32(np.sqrt(pos))
                i = np.int32(pos)
                frac = pos - np.float32(i)
                gain = slope[offset + i] * frac + base[offset + i]
                if has_halo:
                    gain = gain * halo[k, p]
            o0 = ((a0 * m00) + (a1 * m01)) + (a2 * m02)
            o1 = ((a0 * m10) + (a1 * m11)) + (a2 * m12)
            o2 = ((a0 * m20) + (a1 * m21)) + (a2 * m22)
            if tone:
                o0, o1, o2 = o0 * gain, o1 * gain, o2 * gain
            if noise:
                o0 = _noisy(o0, gains[k, 0], shot[k], read[k], eps[k, 0, p])
                o1 = _noisy(o1, gains[k, 1], shot[k], read[k], eps[k, 1, p])
                o2 = _noisy(o2, gains[k, 2], shot[k], read[k], eps[k, 2, p])
            out[k, 0, p] = _encoded(o0, top, table)
            out[k, 1, p] = _encoded(o1, top, table)
            out[k, 2, p] = _encoded(o2, top, table)


@_compiled
def grey_pixels(x, out, value, first, halo, has_halo, noise, eps, gains, shot, read, top, table):
    """Grey images ``x`` ``(b, hw)`` uint8 -> ``out``: image ``first + k``'s tabulated value of its
    code (``value``, 256 entries per image of the plan, flat), times ``halo[k, p]`` with
    ``has_halo``, plus the sensor noise with ``noise`` (``eps`` ``(b, hw)``, ``gains``, ``shot``,
    ``read`` ``(b,)``), encoded as in :func:`colour_pixels`."""
    b, hw = x.shape
    for k in range(b):
        offset = (first + k) * 256
        for p in range(hw):
            o = value[offset + x[k, p]]
            if has_halo:
                o = o * halo[k, p]
            if noise:
                o = _noisy(o, gains[k], shot[k], read[k], eps[k, p])
            out[k, p] = _encoded(o, top, table)
