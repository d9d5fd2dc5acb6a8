"""Fused kernels of the uint8 path, compiled with numba (absent without numba).

The torch kernels of the uint8 path (:mod:`degradations.uint8_path`) make about 40 elementwise
passes and 5 gathers over a chunk's pixels; :func:`colour_pixels` makes one, per pixel: decode table
-> luminance row -> tone curve -> (halo gain) -> each output channel's matrix row -> gain -> (noise)
-> clamp, truncate -> encode table (:func:`grey_pixels` the same for grey chunks). The other
functions replace small torch ops of a chunk's halo mask and of a call's plan (gain curves, grey
tables, white-balance matrices). Every per-image table and constant comes from the same plan as the
torch kernels', and each value is formed by the same float32 (float64) operations in the same order
(``((a0 * c0) + (a1 * c1)) + (a2 * c2)``, never a fused multiply-add: compiled without
``fastmath``, so LLVM neither contracts nor reorders them), so the bytes are the torch kernels'.
Look-ups and arithmetic run in separate loops over blocks of pixels, so LLVM vectorises the
arithmetic (one loop doing both was no faster than torch).

Compiled with ``nogil`` (the CPU path's caller and worker threads run them side by side on their own
slices of images) and ``cache`` (the machine code is kept beside this file, so only the first
process on a machine pays the compilation, a few seconds). :data:`AVAILABLE` says whether numba
could be imported; without it the CPU runs the torch and OpenCV kernels (:mod:`degradations.kernels`).
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
    zero = np.float32(0.0)
    var = max(o / g, zero) * shot + read
    var = max(var, zero)
    sigma = np.float32(np.sqrt(var))
    return o + (sigma * e) * g


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
def _encode_block(value, index, m, top):
    """``index[p]`` = ``value[p]`` clamped to ``[0, top]`` and truncated, for ``p < m``."""
    zero = np.float32(0.0)
    for p in range(m):
        index[p] = np.int32(min(max(value[p], zero), top))


# Pixels per block: each stage of a kernel runs over a block (its scratch, 4 KB per row, stays in
# the L1 cache), so the arithmetic stages have no table look-ups and LLVM vectorises them.
BLOCK = 1024


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
    zero = np.float32(0.0)
    lin = np.empty((3, BLOCK), np.float32)
    gain = np.empty(BLOCK, np.float32)
    frac = np.empty(BLOCK, np.float32)
    value = np.empty(BLOCK, np.float32)
    index = np.empty(BLOCK, np.int32)
    for k in range(b):
        l0, l1, l2 = lum[k, 0] * scale, lum[k, 1] * scale, lum[k, 2] * scale
        offset = (first + k) * (n + 1)
        for start in range(0, hw, BLOCK):
            m = min(BLOCK, hw - start)
            for j in range(3):
                for p in range(m):
                    lin[j, p] = decode[x[k, j, start + p]]
            if tone:
                for p in range(m):  # the tone curve's position: clamp, square root, segment, fraction
                    pos = ((lin[0, p] * l0) + (lin[1, p] * l1)) + (lin[2, p] * l2)
                    pos = min(max(pos, zero), nn)
                    pos = np.float32(np.sqrt(pos))
                    i = np.int32(pos)
                    index[p] = offset + i
                    frac[p] = pos - np.float32(i)
                for p in range(m):
                    gain[p] = slope[index[p]] * frac[p] + base[index[p]]
                if has_halo:
                    for p in range(m):
                        gain[p] = gain[p] * halo[k, start + p]
            for i in range(3):
                c0, c1, c2 = mix[k, i, 0], mix[k, i, 1], mix[k, i, 2]
                for p in range(m):
                    value[p] = ((lin[0, p] * c0) + (lin[1, p] * c1)) + (lin[2, p] * c2)
                if tone:
                    for p in range(m):
                        value[p] = value[p] * gain[p]
                if noise:
                    g, sh, rd = gains[k, i], shot[k], read[k]
                    for p in range(m):
                        value[p] = _noisy(value[p], g, sh, rd, eps[k, i, start + p])
                _encode_block(value, index, m, top)
                for p in range(m):
                    out[k, i, start + p] = table[index[p]]


@_compiled
def grey_pixels(x, out, value, first, halo, has_halo, noise, eps, gains, shot, read, top, table):
    """Grey images ``x`` ``(b, hw)`` uint8 -> ``out``: image ``first + k``'s tabulated value of its
    code (``value``, 256 entries per image of the plan, flat), times ``halo[k, p]`` with
    ``has_halo``, plus the sensor noise with ``noise`` (``eps`` ``(b, hw)``, ``gains``, ``shot``,
    ``read`` ``(b,)``), encoded as in :func:`colour_pixels`."""
    b, hw = x.shape
    vals = np.empty(BLOCK, np.float32)
    index = np.empty(BLOCK, np.int32)
    for k in range(b):
        offset = (first + k) * 256
        for start in range(0, hw, BLOCK):
            m = min(BLOCK, hw - start)
            for p in range(m):
                vals[p] = value[offset + x[k, start + p]]
            if has_halo:
                for p in range(m):
                    vals[p] = vals[p] * halo[k, start + p]
            if noise:
                g, sh, rd = gains[k], shot[k], read[k]
                for p in range(m):
                    vals[p] = _noisy(vals[p], g, sh, rd, eps[k, start + p])
            _encode_block(vals, index, m, top)
            for p in range(m):
                out[k, start + p] = table[index[p]]


@_compiled
def gain_curves(s, h, knots, scale, taylor, ln2, pow2, base, slope):
    """Gain curves as ``uint8_path.curves_torch``: row ``q`` of ``s``, ``h``, ``scale`` ``(S, B)``
    and ``knots`` ``(S, n + 1)`` (float64) -> ``base[q]``, ``slope[q]`` ``(B, n + 1)`` float32, the
    value ``scale * 2**(s (1 - L)^2 + h L^2)`` by :func:`degradations.numerics.exp2_deterministic`'s
    operations (``taylor``: its Horner coefficients, ``pow2``: 2**-60 .. 2**60), each float64 op in the
    same order, then rounded to float32 (the end entry: slope 0, base the last segment's end)."""
    sets, b = s.shape
    n1 = knots.shape[1]
    n = n1 - 1
    samples = np.empty(n1, np.float32)
    dark2 = np.empty(n1, np.float64)
    light2 = np.empty(n1, np.float64)
    poly = np.empty(n1, np.float64)
    index = np.empty(n1, np.int32)
    c0, c1, c2, c3, c4, c5, c6, c7, c8 = (taylor[0], taylor[1], taylor[2], taylor[3], taylor[4], taylor[5],
                                          taylor[6], taylor[7], taylor[8])
    for q in range(sets):
        for i in range(n1):
            dark = 1.0 - knots[q, i]
            dark2[i] = dark * dark
            light2[i] = knots[q, i] * knots[q, i]
        for k in range(b):
            sk, hk, factor = s[q, k], h[q, k], scale[q, k]
            for i in range(n1):  # no look-ups: vectorised
                x = min(max(sk * dark2[i] + hk * light2[i], -60.0), 60.0)
                m = np.floor(x + 0.5)
                t = (x - m) * ln2
                poly[i] = ((((((((c8 * t + c7) * t + c6) * t + c5) * t + c4) * t + c3) * t + c2) * t + c1) * t
                           + c0)
                index[i] = np.int32(m + 60.0)
            for i in range(n1):
                samples[i] = np.float32((poly[i] * pow2[index[i]]) * factor)
            for i in range(n):
                base[q, k, i] = samples[i]
                slope[q, k, i] = samples[i + 1] - samples[i]
            slope[q, k, n] = np.float32(0.0)
            base[q, k, n] = slope[q, k, n - 1] + base[q, k, n - 1]


@_compiled
def table_per_image(x, out, tables, first):
    """``out[k, p] = tables[(first + k) * 256 + x[k, p]]``: ``x`` ``(b, hw)`` uint8 through image
    ``first + k``'s 256-entry table (``tables`` flat; uint8 or float32, as ``out``)."""
    b, hw = x.shape
    for k in range(b):
        offset = (first + k) * 256
        for p in range(hw):
            out[k, p] = tables[offset + x[k, p]]


@_compiled
def halo_lightness(small, inv_scale, base, slope, out):
    """``out`` = the lightness table (``base``/``slope``, 4096 segments on [0, 1]) at ``small *
    inv_scale`` (a power of two), as ``numerics.InterpTable`` evaluates it: clamp, times 4096,
    floor (at most 4095), fraction, ``slope * frac + base``. ``small``, ``out`` ``(b, m)`` float32."""
    b, m = small.shape
    n = np.float32(4096.0)
    top = np.float32(4095.0)
    zero, one = np.float32(0.0), np.float32(1.0)
    for k in range(b):
        for p in range(m):
            pos = min(max(small[k, p] * inv_scale, zero), one) * n
            seg = min(np.float32(np.floor(pos)), top)
            frac = pos - seg
            i = np.int32(seg)
            out[k, p] = slope[i] * frac + base[i]


@_compiled
def curve_at(x, base, slope, n, first, out):
    """``out[k, p]`` = image ``first + k``'s curve (``base``/``slope``, ``n`` segments per image and
    an end entry, flat) at ``x[k, p]`` clamped to [0, 1], as ``uint8_path.Curves.evaluate``.
    ``x``, ``out`` ``(b, m)`` float32."""
    b, m = x.shape
    nf = np.float32(n)
    zero, one = np.float32(0.0), np.float32(1.0)
    for k in range(b):
        offset = (first + k) * (n + 1)
        for p in range(m):
            pos = min(max(x[k, p], zero), one) * nf
            i = np.int32(pos)
            frac = pos - np.float32(i)
            out[k, p] = slope[offset + i] * frac + base[offset + i]


@_compiled
def grey_tables(decode, lum, mix, tone, base, slope, n, top, table, lum_out, value_out, u8_out):
    """Image ``k``'s tables of the 256 grey codes, as ``uint8_path.grey_tables_torch``: luminance
    ``decode * lum[k]``, value ``decode * mix[k]`` (times the tone curve at the square root of the
    luminance clamped to [0, 1], with ``tone``), and the value's code (clamp to ``[0, top]``,
    truncate, ``table``). Outputs ``(b, 256)``."""
    b = lum.shape[0]
    nf = np.float32(n)
    zero, one = np.float32(0.0), np.float32(1.0)
    frac = np.empty(256, np.float32)
    index = np.empty(256, np.int32)
    for k in range(b):
        offset = k * (n + 1)
        lk, mk = lum[k], mix[k]
        for c in range(256):  # no look-ups but the 256-entry decode table: vectorised
            lum_out[k, c] = decode[c] * lk
            value_out[k, c] = decode[c] * mk
        if tone:
            for c in range(256):
                pos = np.float32(np.sqrt(min(max(lum_out[k, c], zero), one))) * nf
                i = np.int32(pos)
                index[c] = offset + i
                frac[c] = pos - np.float32(i)
            for c in range(256):
                value_out[k, c] = value_out[k, c] * (slope[index[c]] * frac[c] + base[index[c]])
        for c in range(256):
            index[c] = np.int32(min(max(value_out[k, c], zero), top))
        for c in range(256):
            u8_out[k, c] = table[index[c]]


@_compiled
def _mat3_mul(a, b, out):
    """``out = a @ b`` (3x3) as ``white_balance.mat3_mul``: ``(a0 b0 + a1 b1) + a2 b2``."""
    for i in range(3):
        for j in range(3):
            out[i, j] = (a[i, 0] * b[0, j] + a[i, 1] * b[1, j]) + a[i, 2] * b[2, j]


@_compiled
def white_balance(mired, tint, table, lo, hi, tint_scale, dst, brad, brad_inv, rgb_from_xyz, xyz_from_rgb,
                  normalisation, out):
    """``out[k]`` = ``white_balance.white_balance_matrix`` of ``(mired[k], tint[k])`` (float64),
    its float64 operations in the same order: Robertson interpolation (``table``, mired clamped to
    ``[lo, hi]``), xy -> XYZ, Bradford adaptation to ``dst`` (the reference white's XYZ, as that
    module computes it), ``rgb_from_xyz @ cat @ xyz_from_rgb``, then ``normalisation`` 0 (luminance),
    1 (green) or 2 (none)."""
    b = mired.shape[0]
    nk = table.shape[0]
    second = np.empty((3, 3), np.float64)
    cat = np.empty((3, 3), np.float64)
    m1 = np.empty((3, 3), np.float64)
    m = np.empty((3, 3), np.float64)
    for k in range(b):
        r = min(max(mired[k], lo), hi)
        i = -1  # searchsorted(right=True) - 1, clamped to [0, nk - 2]
        for j in range(nk):
            if table[j, 0] <= r:
                i = j
        i = min(max(i, 0), nk - 2)
        r0, r1 = table[i, 0], table[i + 1, 0]
        f = (r1 - r) / (r1 - r0)
        g = 1.0 - f
        u = table[i, 1] * f + table[i + 1, 1] * g
        v = table[i, 2] * f + table[i + 1, 2] * g
        t0, t1 = table[i, 3], table[i + 1, 3]
        n0, n1 = np.sqrt(1.0 + t0 * t0), np.sqrt(1.0 + t1 * t1)
        du = (1.0 / n0) * f + (1.0 / n1) * g
        dv = (t0 / n0) * f + (t1 / n1) * g
        n3 = np.sqrt(du * du + dv * dv)
        offset = tint[k] / tint_scale
        u = u + du / n3 * offset
        v = v + dv / n3 * offset
        denom = u - 4.0 * v + 2.0
        x, y = 1.5 * u / denom, v / denom
        s0, s1, s2 = x / y, 1.0, (1.0 - x - y) / y
        for a in range(3):
            to = (brad[a, 0] * dst[0] + brad[a, 1] * dst[1]) + brad[a, 2] * dst[2]
            fr = (brad[a, 0] * s0 + brad[a, 1] * s1) + brad[a, 2] * s2
            scale = to / fr
            for j in range(3):
                second[a, j] = scale * brad[a, j]
        _mat3_mul(brad_inv, second, cat)
        _mat3_mul(rgb_from_xyz, cat, m1)
        _mat3_mul(m1, xyz_from_rgb, m)
        if normalisation == 0:
            n_r = (m[0, 0] * 1.0 + m[0, 1] * 1.0) + m[0, 2] * 1.0
            n_g = (m[1, 0] * 1.0 + m[1, 1] * 1.0) + m[1, 2] * 1.0
            n_b = (m[2, 0] * 1.0 + m[2, 1] * 1.0) + m[2, 2] * 1.0
            d = (n_r * 0.2126 + n_g * 0.7152) + n_b * 0.0722
        elif normalisation == 1:
            d = (m[1, 0] * 1.0 + m[1, 1] * 1.0) + m[1, 2] * 1.0
        else:
            d = 1.0
        for a in range(3):
            for j in range(3):
                out[k, a, j] = m[a, j] / d if normalisation != 2 else m[a, j]
