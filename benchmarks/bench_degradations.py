"""Throughput of the batched degradation pipeline vs a per-image OpenCV/NumPy implementation.

Both run the same ``lrlike`` algorithm (LUT decode, white-balance matrix with the exposure gain
folded in, highlights/shadows with a 1/4-resolution halo mask, optional Poisson-Gaussian noise,
LUT encode) on the same uint8 images and the same sampled parameters, in one process:

* batched: :func:`degradations.degrade_batch_uint8` on the CPU with torch's default threads (or
  ``--threads N``); with N > 1 it splits each chunk's images between N worker threads with one
  torch thread each (:mod:`degradations.cpu_threads`);
* reference: the function :func:`reference_degrade` below, one image at a time, OpenCV limited to
  one thread (a single-process loop).

Prints images/s for 48x48 grey, 100x100 and 224x224 colour images, presets ``paper`` (no noise)
and ``realistic`` (noise; JPEG coding is excluded from both), each path's best of the repetitions,
and the speed ratio batched / reference as the median over repetitions of the two run back to back
(their best-of figures can fall in different load phases of a shared machine). It also checks that
the two agree (noise off) and prints the largest difference in code values.

    python benchmarks/bench_degradations.py [--quick] [--threads N] [--sizes 48,100,224] [--device cpu|cuda]
    python benchmarks/bench_degradations.py --per-op [--quick] [--sizes ...]

``--per-op`` times each op of the uint8 path with every kernel registered for it
(:mod:`degradations.kernels`: ``torch`` and ``opencv`` or ``numba``), one torch and one OpenCV
thread, on the chunks the path uses (ms per image, best of the repetitions, kernels interleaved,
after a warm-up call that also compiles the numba kernels), and marks the one the CPU runs
(:data:`degradations.kernels.CPU_CHOICE`) and how it compares with the other. The ``colour`` and
``grey`` ops are whole chunks from codes to codes (their torch kernels run the ops above through the
CPU's picks).

The machine (CPU model from /proc/cpuinfo, cores, torch/OpenCV/NumPy versions) is printed first.

The machine's load average is printed before and after: other processes on a shared machine slow
both paths, and the batched path (which needs every core) more.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from degradations import degrade_batch_uint8, load_preset
from degradations import kernels as K
from degradations.numerics import np_linear_to_srgb, np_srgb_to_linear
from degradations.white_balance import (
    BRADFORD,
    REFERENCE_TEMPERATURE,
    REFERENCE_TINT,
    RGB_FROM_XYZ,
    ROBERTSON_TABLE,
    TINT_SCALE,
    XYZ_FROM_RGB,
)

# ----------------------------------------------------------------------------- reference (NumPy/OpenCV)

DECODE = np_srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)
ENCODE = np.clip(np.floor(np_linear_to_srgb(np.arange(65536) / 65535.0) * 255 + 0.5), 0, 255).astype(np.uint8)
BRADFORD_INV = np.linalg.inv(BRADFORD)


def ref_xy(mired: float, tint: float) -> tuple[float, float]:
    """Robertson (DNG SDK) mired/tint -> xy, scalar NumPy."""
    t = ROBERTSON_TABLE
    r = min(max(mired, 20.0), 500.0)
    i = int(np.clip(np.searchsorted(t[:, 0], r, side="right") - 1, 0, len(t) - 2))
    f = (t[i + 1, 0] - r) / (t[i + 1, 0] - t[i, 0])
    u = t[i, 1] * f + t[i + 1, 1] * (1 - f)
    v = t[i, 2] * f + t[i + 1, 2] * (1 - f)
    d0 = np.array([1.0, t[i, 3]]) / np.hypot(1.0, t[i, 3])
    d1 = np.array([1.0, t[i + 1, 3]]) / np.hypot(1.0, t[i + 1, 3])
    d = d0 * f + d1 * (1 - f)
    d /= np.hypot(*d)
    u, v = u + d[0] * tint / TINT_SCALE, v + d[1] * tint / TINT_SCALE
    den = u - 4 * v + 2
    return 1.5 * u / den, v / den


def ref_wb_matrix(p: dict, k_temp: float = 1.0, k_tint: float = 1.5) -> np.ndarray:
    mode = p.get("wb_mode", "none")
    if mode == "none":
        return np.eye(3)
    if mode == "incremental":
        mired = 1e6 / REFERENCE_TEMPERATURE - k_temp * p.get("d_temp", 0.0)
        tint = REFERENCE_TINT + k_tint * p.get("d_tint", 0.0)
    else:
        mired, tint = 1e6 / p["temperature_k"], p["tint"]

    def xyz(x, y):
        return np.array([x / y, 1.0, (1 - x - y) / y])
    src, dst = xyz(*ref_xy(mired, tint)), xyz(*ref_xy(1e6 / REFERENCE_TEMPERATURE, REFERENCE_TINT))
    cat = BRADFORD_INV @ np.diag((BRADFORD @ dst) / (BRADFORD @ src)) @ BRADFORD
    m = RGB_FROM_XYZ @ cat @ XYZ_FROM_RGB
    return m / (np.array([0.2126, 0.7152, 0.0722]) @ m.sum(axis=1))


def reference_degrade(img: np.ndarray, p: dict, radius_frac: float = 0.05, gain_ev: float = 1.5) -> np.ndarray:
    """One uint8 (H, W, C) image -> uint8, the lrlike pipeline in NumPy/OpenCV."""
    h, w, c = img.shape
    lin = cv2.LUT(img, DECODE).reshape(h, w, c)  # OpenCV's table look-up (float32 table)
    gain = 2.0 ** p.get("exposure_ev", 0.0)
    if c == 3:
        lin = cv2.transform(lin, (ref_wb_matrix(p) * gain).astype(np.float32))
        y = cv2.transform(lin, np.array([[0.2126, 0.7152, 0.0722]], np.float32))
    else:
        lin = lin * np.float32(gain)
        y = lin[..., 0]
    y = np.clip(y.reshape(h, w), 0, 1)
    light = np.where(y > 0.008856, 1.16 * np.cbrt(y) - 0.16, 9.033 * y).astype(np.float32)
    hl, sh = float(p.get("highlights", 0.0)), float(p.get("shadows", 0.0))
    h1, s1 = min(max(hl, -50.0), 50.0), min(max(sh, -50.0), 50.0)  # Python floats keep arrays float32
    k = gain_ev / 100.0
    d_ev = (s1 * k) * (1 - light) ** 2 + (h1 * k) * light ** 2
    if hl != h1 or sh != s1:
        small = cv2.resize(light, ((w + 3) // 4, (h + 3) // 4), interpolation=cv2.INTER_AREA)
        sigma = radius_frac * min(h, w) / 4
        if sigma >= 0.3:
            small = cv2.GaussianBlur(small, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        base = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        d_ev += ((sh - s1) * k) * (1 - base) ** 2 + ((hl - h1) * k) * base ** 2
    lin = lin.reshape(h, w, c) * np.exp2(d_ev, dtype=np.float32)[..., None]
    shot, read = p.get("noise_shot", 0.0), p.get("noise_read", 0.0)
    if shot > 0 or read > 0:
        g = np.array([p.get("cam_gain_r", 1.0), 1.0, p.get("cam_gain_b", 1.0)], np.float32)[:c] if c == 3 \
            else np.ones(1, np.float32)
        eps = np.random.default_rng(p.get("noise_seed", 0)).standard_normal((h, w, c), dtype=np.float32)
        raw = lin / g
        lin = lin + np.sqrt(shot * np.maximum(raw, 0) + read) * eps * g
    idx = (np.clip(lin, 0, 1) * 65535 + 0.5).astype(np.int64)
    return ENCODE[idx]


# ----------------------------------------------------------------------------- harness

def make_images(n: int, size: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = (rng.random((n, max(2, size // 8), max(2, size // 8), channels)) * 255).astype(np.float32)
    imgs = np.stack([cv2.resize(s, (size, size), interpolation=cv2.INTER_CUBIC).reshape(size, size, channels)
                     for s in small])
    return np.clip(imgs, 0, 255).astype(np.uint8)


def interleaved_times(fns, reps: int) -> list[list[float]]:
    """Wall times of each function over ``reps`` repetitions, ``times[rep][fn]``. Within a repetition
    the functions run back to back (in alternating order), so both see the same background load: this
    machine is shared and its speed drifts between phases of seconds."""
    for fn in fns:
        fn()  # warm-up (tables, allocator)
    times = []
    for rep in range(reps):
        row = [0.0] * len(fns)
        for i in (range(len(fns)) if rep % 2 == 0 else reversed(range(len(fns)))):  # alternate who goes first
            t0 = time.perf_counter()
            fns[i]()
            row[i] = time.perf_counter() - t0
        times.append(row)
    return times


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    from degradations import fused

    return (f"machine: {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}, "
            f"opencv {cv2.__version__}, numpy {np.__version__}, numba {fused.VERSION or 'not installed'}, "
            f"python {platform.python_version()}")


# ----------------------------------------------------------------------------- per-op mode

def _op_cases(size: int, channels: int, b: int) -> dict[str, tuple]:
    """``{op: (args builder, label)}``: each op's inputs for a chunk of ``b`` images (the shapes the
    uint8 path gives that kernel), built fresh per call by ``args()``."""
    from degradations.numerics import DETERMINISTIC
    from degradations.tone import _gauss_taps, mask_downscale
    from degradations.transfer import decode_lut
    from degradations.uint8_path import Workspace

    cpu = torch.device("cpu")
    g = torch.Generator().manual_seed(size)
    codes = torch.from_numpy(make_images(b, size, channels)).permute(0, 3, 1, 2).contiguous()
    grey = codes[:, :1].contiguous()
    f = mask_downscale(size, size)
    lum = torch.rand(b, 1, size, size, generator=g) * 0.2
    small = DETERMINISTIC.lightness(torch.nn.functional.avg_pool2d(lum, f) if f > 1 else lum)
    sigma = 0.05 * size / f
    _gauss_taps(sigma)
    lin = torch.rand(b, 3, size, size, generator=g) * 0.2
    coefs = [torch.rand(b, 1, 1, 1, generator=g) for _ in range(3)]
    tables = (torch.rand(b * 256, generator=g) * 255).to(torch.uint8)
    ws = Workspace(cpu)
    out_f = torch.empty(codes.shape)
    index = torch.empty(codes.shape, dtype=torch.int32)
    out_u8 = torch.empty(grey.shape, dtype=torch.uint8)
    dst, tmp = torch.empty(b, 1, size, size), torch.empty(b, 1, size, size)
    cases = {
        "decode": ((codes, out_f, index, decode_lut(cpu)), "sRGB decode, 256-entry table, all channels"),
        "levels": ((grey, out_u8, tables, 0, ws), "grey: per-image composed 256-entry table"),
        "downsample": ((lum, f, ws), f"halo mask: {f}x{f} block mean"),
        "blur": ((small, sigma, ws), f"halo mask: Gaussian sigma {sigma:.2f} at 1/{f}"),
        "upsample": ((small, (size, size), f, ws), f"halo gain: bilinear x{f}"),
    }
    if channels == 3:
        cases["mix"] = (([lin[:, j:j + 1] for j in range(3)], coefs, dst, tmp),
                        "white balance x exposure: one channel of the 3x3 mix")
        cases["colour"] = (_chunk_args(codes, halo=False),
                           "colour chunk, codes to codes (decode, mixes, tone curve, encode; paper, no halo)")
    else:
        cases["grey"] = (_chunk_args(grey, halo=True),
                         "grey chunk with halo mask (tables, halo gain incl. its kernels, encode; paper)")
    halo_plan = _chunk_args(codes if channels == 3 else grey, halo=True)[2]
    scale = 65536.0 if channels == 3 else 1.0  # the colour chunks' luminance is in 256**2 units
    cases["halo"] = ((lum * scale, halo_plan, 0, ws, scale),
                     "halo gain of a chunk's luminance (the mask kernels above included)")
    if channels == 3:
        gw = torch.Generator().manual_seed(size)
        illuminants = (torch.rand(CALL_BATCH[size], generator=gw, dtype=torch.float64) * 400 + 50,
                       torch.rand(CALL_BATCH[size], generator=gw, dtype=torch.float64) * 100 - 50)
        cases["white_balance"] = (illuminants, (f"white-balance matrices (float64) of a call's {CALL_BATCH[size]} "
                                                f"images (per image of the call)"))
    if channels == 1:
        grey_plan = _chunk_args(grey[:1].expand(CALL_BATCH[size], -1, -1, -1).contiguous(), halo=False)[2]
        cases["grey_tables"] = ((grey_plan, ws), (f"grey: per-image tables of the 256 codes, a call's "
                                                  f"{CALL_BATCH[size]} images (per image of the call)"))
    cases["curves"] = (_curves_args(CALL_BATCH[size]),
                       f"tone + halo gain curves of a call's {CALL_BATCH[size]} images (per image of the call)")
    return cases


# images per degrade_batch_uint8 call of the benchmark, per size
CALL_BATCH = {48: 128, 100: 64, 224: 16}


def _curves_args(b: int) -> tuple:
    """The ``curves`` kernels' arguments for a call of ``b`` ``paper`` images with the halo mask."""
    from degradations.tone import lightness_knots, sqrt_lightness_knots
    from degradations.uint8_path import Workspace

    cpu = torch.device("cpu")
    g = torch.Generator().manual_seed(b)
    sliders = (torch.rand(2, 2, b, generator=g, dtype=torch.float64) * 200 - 100) * 0.015
    scale = torch.stack([torch.full((b,), 131070.0, dtype=torch.float64), torch.ones(b, dtype=torch.float64)])
    return (sliders[0], sliders[1], torch.stack([sqrt_lightness_knots(cpu), lightness_knots(cpu)]), scale,
            Workspace(cpu), ("tone", "halo"))


def _chunk_args(codes: torch.Tensor, *, halo: bool) -> tuple:
    """The ``colour``/``grey`` kernels' arguments for a chunk of ``paper`` images: sliders within
    +-50 (no halo mask: most chunks) or all beyond (``halo``: the grey kernel's chunks)."""
    from degradations.pipeline import params_to_tensors, wb_matrices
    from degradations.uint8_path import Workspace, make_plan

    preset = load_preset("paper")
    params = [preset.sample(0, f"img{i}.png") for i in range(codes.shape[0])]
    for p in params:
        for key in ("highlights", "shadows"):
            p[key] = (-60.0 - abs(p[key]) / 2) if halo else max(-50.0, min(50.0, p[key]))
    t = params_to_tensors(params)
    c = codes.shape[1]
    wb = wb_matrices(t, preset.options, t["exposure_ev"]) if c == 3 else None
    plan = make_plan(t, preset.options, c, codes, wb)
    return codes, torch.empty(codes.shape, dtype=torch.uint8), plan, 0, Workspace(torch.device("cpu"))


def per_op(sizes: set[int], quick: bool) -> None:
    """The per-op table: every registered kernel of every op, per image size."""
    from degradations.pipeline import CPU_CHUNK_ELEMENTS

    torch.set_num_threads(1)  # as on the path's worker threads
    reps = 5 if quick else 15
    print(f"per-op kernels, ms per image (best of {reps}, kernels interleaved; one torch thread, one "
          f"OpenCV thread); chunk = the path's chunk of {CPU_CHUNK_ELEMENTS} values")
    print(f"{'size':>8} {'op':>13} {'images':>6} {'torch ms':>9} {'other ms':>9} {'other':>6} {'CPU runs':>8} "
          f"{'other/chosen':>12}  what")
    worst = 0.0
    for size, channels in [(48, 1), (100, 3), (224, 3)]:
        if size not in sizes:
            continue
        b = max(1, CPU_CHUNK_ELEMENTS // (channels * size * size))
        if quick:
            b = max(1, b // 4)
        for op, (args, what) in _op_cases(size, channels, b).items():
            names = K.KERNELS[op].names()
            fns = [functools.partial(K.KERNELS[op].get(name).fn, *args) for name in names]
            times = interleaved_times(fns, reps)
            images = CALL_BATCH[size] if op in ("curves", "grey_tables", "white_balance") else b
            best = {name: min(t[i] for t in times) / images * 1e3 for i, name in enumerate(names)}
            chosen = K.CPU_CHOICE[op]
            others = [v for name, v in best.items() if name != chosen]
            ratio = min(others) / best[chosen] if others else float("nan")
            worst = min(worst or ratio, ratio)
            alt = chosen if chosen != "torch" else next((name for name in names if name != "torch"), "-")
            rest = "".join(f" ({name} {best[name]:.4f} ms)" for name in names if name not in ("torch", alt))
            label = f"{size}x{size}{'g' if channels == 1 else ''}"
            print(f"{label:>8} {op:>13} {images:>6} {best.get('torch', float('nan')):>9.4f} "
                  f"{best.get(alt, float('nan')):>9.4f} {alt:>6} {chosen:>8} {ratio:>12.2f}  {what}{rest}")
    print(f"other/chosen: the fastest other kernel's time over the chosen one's (> 1: the choice is faster); "
          f"lowest {worst:.2f} (goal >= 0.9)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer images and repetitions")
    ap.add_argument("--per-op", action="store_true",
                    help="time each op's torch and OpenCV kernels per image size instead")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads for the batched path (0 = torch's default)")
    ap.add_argument("--sizes", default="48,100,224", help="comma-separated image sizes to run (48, 100, 224)")
    ap.add_argument("--batch", type=int, default=0,
                    help="images per degrade_batch_uint8 call (0 = 128, 64, 16 for 48, 100, 224)")
    args = ap.parse_args()
    try:
        sizes = {int(v) for v in args.sizes.split(",")}
    except ValueError:
        ap.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    cv2.setNumThreads(1)
    print(f"lldif-bench degradations benchmark{' (per op)' if args.per_op else ''}")
    print(machine_line())
    print(f"load average at start {_load()} (other processes share the CPU)")
    if args.per_op:
        per_op(sizes, args.quick)
        print(f"load average at end {_load()}")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    reps = 3 if args.quick else 9
    threads = torch.get_num_threads()
    split = (f"each chunk's images split over {threads} worker threads with one torch thread each"
             if device.type == "cpu" and threads > 1 else "one thread" if device.type == "cpu" else "")
    print(f"cpu cores {os.cpu_count()}, device {device}; batched path: torch threads {threads}"
          f"{' (' + split + ')' if split else ''}{' [--threads]' if args.threads else ' [default]'}; "
          f"reference: OpenCV 1 thread")
    if args.batch < 0:
        ap.error(f"--batch must be positive (or 0 for the defaults), got {args.batch}")
    cases = [case for case in [(48, 1, 256, CALL_BATCH[48]), (100, 3, 256, CALL_BATCH[100]),
                               (224, 3, 64, CALL_BATCH[224])] if case[0] in sizes]
    if not cases:
        ap.error(f"--sizes: none of {args.sizes!r} is one of 48, 100, 224")
    cases = [(size, ch, n, args.batch or batch) for size, ch, n, batch in cases]
    print(f"{'size':>9} {'preset':>10} {'batch':>5} {'batched img/s':>14} {'per-image img/s':>16} "
          f"{'ratio':>6} {'max |diff|':>10}")
    for size, ch, n, batch in cases:
        if args.quick:
            n //= 4
        imgs = make_images(n, size, ch)
        tensor = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous().to(device)
        for name in ("paper", "realistic"):
            preset = load_preset(name)
            params = [preset.sample(0, f"img{i}.png") for i in range(n)]

            def batched(tensor=tensor, params=params, preset=preset, batch=batch, n=n):
                for s in range(0, n, batch):
                    out = degrade_batch_uint8(tensor[s:s + batch], params[s:s + batch], preset=preset)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                return out

            def per_image(imgs=imgs, params=params):
                for img, p in zip(imgs, params):
                    reference_degrade(img, p)

            times = interleaved_times([batched, per_image], reps)
            t_b, t_r = (min(column) for column in zip(*times))
            ratio = float(np.median([r / b for b, r in times]))  # of back-to-back pairs: same load
            # agreement check with noise off (the two use different random generators)
            quiet = [{k: v for k, v in p.items() if not k.startswith("noise")} for p in params[:8]]
            ours = degrade_batch_uint8(tensor[:8], quiet, preset=preset).permute(0, 2, 3, 1).cpu().numpy()
            ref = np.stack([reference_degrade(img, p) for img, p in zip(imgs[:8], quiet)])
            diff = int(np.abs(ours.astype(int) - ref.astype(int)).max())
            label = f"{size}x{size}{'g' if ch == 1 else ''}"
            print(f"{label:>9} {name:>10} {batch:>5} {n / t_b:>14.0f} {n / t_r:>16.0f} "
                  f"{ratio:>6.2f} {diff:>10d}")
    print("img/s: best repetition of each path; ratio: median over repetitions of per-image time / batched time,")
    print("each pair run back to back (goal on CPU: >= 1.5); max |diff| in uint8 code values, noise off")
    print(f"load average at end {_load()}")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


if __name__ == "__main__":
    main()
