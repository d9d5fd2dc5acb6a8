"""One prepared GPU check (issue 7): is the GPU path correct, how fast is it, which speed targets pass.

    bash benchmarks/device_check.sh                 # on the GPU machine (installs carried wheels first)
    python benchmarks/device_check.py [--budget 420] [--out DIR] [--device cuda]
    python benchmarks/device_check.py --cpu-smoke   # the same code paths at tiny sizes on the CPU (CI)

Sections (each guarded: an error or a timeout is recorded with its message and the rest still runs;
a section is skipped, and says so, when the time budget left is below what it needs):

* ``environment``  versions, GPU, and the measured bf16 matmul rate (the peak for MFU figures);
* ``parity``       every degradation op on the CPU and on the device from the same inputs: max abs
                   error in float32 and the 8-bit mismatch rate (after the export encoding), plus
                   the whole pipeline per preset (float32 ``degrade``, uint8 ``degrade_batch_uint8``);
* ``throughput``   degradation img/s at 100x100 and 224x224 for B = 64/256/1024: the uint8 export
                   path (eager), the float32 path eager and ``torch.compile``-d, and the CPU path;
* ``make_dataset`` ``build_lowlight`` end to end on a generated set of 20k 100x100 JPEGs, with the
                   decode+encode floor (the staged pipeline with the degrade left out) beside it;
* ``training``     train img/s (bf16 autocast, channels_last, 112x112, batches from the packed
                   loader, one host sync per step as the engine does) for ResNet-18 and every LLDif
                   stage; peak memory; FLOPs and MFU; the share of the step loop spent waiting for
                   the next batch; the estimated length of a full LL-RAF-DB LLDif run;
* ``inference``    LLDif label-free inference cost at T = 1, 4, 50 diffusion steps.

Then the speed targets of issue 7 item 2 are printed as pass/fail lines ("n/a (cpu smoke)" in the
smoke mode); a missed target gets a diagnosis (torch.profiler top kernels, the loader, or a
cProfile of the make-dataset main process). Writes ``device_check.json`` and ``device_check.md``
to ``--out``, else ``$OUT``, else the working directory (the JSON after every section, so a run
killed at its time limit still leaves what it measured). Exit code 1 when a section failed.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib
import importlib.util
import io
import json
import math
import operator
import os
import platform
import pstats
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from lldif_bench.registry import Registry

GIB = 1024 ** 3
# LLDif's text encoder for timing: the frozen encoder only builds a caption bank once, so the hash
# stand-in costs the same per step as MiniLM and needs no model files (the GPU machine is offline).
HASH_TEXT = {"kind": "hash", "dim": 384}


# ==================================================================================================
# Sizes: the full run on the GPU and the CPU smoke run walk the same code with these numbers
# ==================================================================================================
@dataclass(frozen=True)
class Sizes:
    """Every size the sections use."""

    parity_batch: int = 8
    parity_size: int = 100
    throughput_sizes: tuple[int, ...] = (100, 224)
    throughput_batches: tuple[int, ...] = (64, 256, 1024)
    cpu_batch: int = 64                 # the CPU reference batch of the throughput section
    reps: int = 5                       # timed repetitions (best of)
    compile: bool = True                # also time the torch.compile-d float path
    md_images: int = 20_000
    md_batch: int = 256
    md_workers: int = 0                 # 0: os.cpu_count() - 1
    md_profile_images: int = 4_000      # the main-process cProfile of a missed make-dataset target
    train_images: int = 4_096
    train_batch: int = 64               # the harness's default batch size
    image_size: int = 112
    warmup_steps: int = 3
    timed_steps: int = 20
    lldif_options: dict = field(default_factory=lambda: {"config": "base", "text": {"kind": "hash", "dim": 384}})
    # (row label, registered method, builder options) of the training section; "lldif" is the one the
    # targets read; the others are measured after it when the budget allows
    train_models: tuple = (("resnet18", "resnet18", {}), ("lldif", "lldif", {"config": "base", "text": HASH_TEXT}),
                           ("lldif-fast", "lldif", {"config": "fast", "text": HASH_TEXT}))
    infer_steps: tuple[int, ...] = (1, 4, 50)
    infer_batch: int = 64
    infer_iters: int = 5
    matmul_n: int = 8192
    profile_steps: int = 3
    estimate_scale: float = 1.0         # multiplies every section's time estimate (0: never skip)


FULL = Sizes()
SMOKE = Sizes(parity_batch=2, parity_size=16, throughput_sizes=(32,), throughput_batches=(4,), cpu_batch=4,
              reps=1, compile=False, md_images=8, md_batch=4, md_workers=1, md_profile_images=4,
              train_images=4, train_batch=2, image_size=112, warmup_steps=1, timed_steps=1,
              lldif_options={"config": "tiny"}, infer_steps=(1, 2), infer_batch=2, infer_iters=1,
              train_models=(("resnet18", "resnet18", {}), ("lldif", "lldif", {"config": "tiny"})),
              matmul_n=64, profile_steps=1, estimate_scale=0.0)


# ==================================================================================================
# Budget, time limits, guarded sections
# ==================================================================================================
@dataclass
class Budget:
    """Seconds left of the whole run's budget (``clock`` injectable for tests)."""

    total_s: float
    clock: Callable[[], float] = time.monotonic
    start: float | None = None

    def __post_init__(self) -> None:
        if self.start is None:
            self.start = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        return self.total_s - self.elapsed()

    def allows(self, seconds: float) -> bool:
        return self.left() >= seconds


class SectionTimeout(BaseException):
    """Raised inside a section when its time is up (a BaseException, so that no ``except Exception``
    on the way swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`SectionTimeout` in the main thread after ``seconds`` (SIGALRM; elsewhere no limit)."""
    usable = hasattr(signal, "setitimer") and _in_main_thread()
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise SectionTimeout(f"time budget ran out after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@dataclass
class Context:
    """What every section gets: sizes, device, budget, scratch folder, earlier results, shared state."""

    sizes: Sizes
    device: torch.device
    budget: Budget
    scratch: Path
    smoke: bool
    results: dict[str, dict] = field(default_factory=dict)   # section -> its results (so far)
    state: dict[str, Any] = field(default_factory=dict)      # objects later steps reuse (not saved)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


@dataclass(frozen=True)
class Section:
    run: Callable[[Context, dict], None]   # fills its results dict in place (partial results survive)
    estimate_s: float                     # least seconds it needs on the GPU machine (else skipped)
    max_s: float                          # most seconds it may take there (then stopped, partial)
    requires: tuple[str, ...] = ()        # importable modules it needs


SECTIONS: Registry[Section] = Registry("device-check section")


def section(name: str, estimate_s: float, max_s: float, requires: tuple[str, ...] = (), help: str = ""):
    def decorator(fn: Callable[[Context, dict], None]) -> Callable[[Context, dict], None]:
        SECTIONS.add(name, Section(fn, estimate_s, max_s, requires), help)
        return fn
    return decorator


def run_guarded(name: str, fn: Callable[[Context, dict], None], ctx: Context, estimate_s: float,
                max_s: float, requires: tuple[str, ...] = ()) -> dict:
    """Run one section (or diagnosis): skipped when a required module is missing or the budget left
    is below ``estimate_s``; stopped after ``max_s`` or at the end of the budget (GPU run only).
    The record says what happened; the results it filled so far are kept."""
    results: dict = {}
    record: dict[str, Any] = {"status": "ok", "seconds": 0.0, "results": results}
    missing = [m for m in requires if importlib.util.find_spec(m) is None]
    need = estimate_s * ctx.sizes.estimate_scale
    if missing:
        record.update(status="skipped", reason=f"needs {', '.join(missing)}, not installed here (on the GPU "
                      f"machine carry wheels: bash benchmarks/device_check.sh fetch, then carry .whl)")
    elif not ctx.budget.allows(need):
        record.update(status="skipped", reason=f"time budget: {max(ctx.budget.left(), 0):.0f} s left, "
                      f"it needs about {need:.0f} s")
    else:
        ctx.results[name] = results
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            limit = min(max(ctx.budget.left(), 1.0), max_s) if ctx.sizes.estimate_scale else None
            with time_limit(limit) if limit else contextlib.nullcontext():
                fn(ctx, results)
        except SectionTimeout as err:
            record.update(status="timeout", error=str(err))
        except Exception as err:  # noqa: BLE001  (one broken section must not stop the others)
            record.update(status="error", error=f"{type(err).__name__}: {err}",
                          traceback=traceback.format_exc(limit=8)[-3000:])
        record["seconds"] = round(time.perf_counter() - t0, 2)
        record["cpu_seconds"] = round(time.process_time() - c0, 2)  # this process's CPU time (not workers')
    line = f"== {name}: {record['status']} ({record['seconds']:.1f} s)"
    detail = record.get("reason") or record.get("error")
    print(line + (f": {detail}" if detail else ""), flush=True)
    return record


# ==================================================================================================
# Small measuring helpers
# ==================================================================================================
def best_time(fn: Callable[[], Any], ctx: Context, reps: int, warmup: int = 1) -> float:
    """Best wall seconds of ``fn`` over ``reps`` calls (device synchronised), after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    ctx.sync()
    best = float("inf")
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        fn()
        ctx.sync()
        best = min(best, time.perf_counter() - t0)
    return best


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing or not finite."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def peak_memory_gib(ctx: Context) -> float | None:
    return torch.cuda.max_memory_allocated(ctx.device) / GIB if ctx.device.type == "cuda" else None


def reset_peak_memory(ctx: Context) -> None:
    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(ctx.device)


def profile_top(fn: Callable[[], Any], ctx: Context, top: int = 8) -> dict:
    """torch.profiler over ``fn``: the top ops/kernels by self device time (CPU time on the CPU) and
    the share of the wall time the device was busy."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if ctx.device.type == "cuda" else [])
    ctx.sync()
    t0 = time.perf_counter()
    with profile(activities=activities) as prof:
        fn()
        ctx.sync()
    wall = time.perf_counter() - t0
    on_device = ctx.device.type == "cuda"

    averages = list(prof.key_averages())
    device_attr = next((a for a in ("self_device_time_total", "self_cuda_time_total")
                        if averages and hasattr(averages[0], a)), None)  # the name changed in torch 2.4

    def self_us(event) -> float:
        if on_device and device_attr:
            return float(getattr(event, device_attr) or 0)
        return float(event.self_cpu_time_total)

    events = sorted(averages, key=self_us, reverse=True)
    rows = [{"name": e.key[:90], "ms": round(self_us(e) / 1e3, 3), "calls": int(e.count)}
            for e in events[:top] if self_us(e) > 0]
    busy = sum(self_us(e) for e in events) / 1e6 / wall if on_device and wall > 0 else None
    return {"wall_s": round(wall, 4), "device_busy_fraction": busy, "top": rows,
            "clock": "self device time" if on_device else "self CPU time"}


def describe_profile(prof: dict) -> str:
    tops = ", ".join(f"{r['name']} {r['ms']:.2f} ms" for r in prof.get("top", [])[:4])
    busy = prof.get("device_busy_fraction")
    if busy is None:
        return f"top ops by self CPU time: {tops}"
    bound = "host-bound (launches/Python: the GPU idles between kernels)" if busy < 0.7 else "GPU-bound"
    return f"{bound}, GPU busy {busy:.0%} of the wall time; top kernels: {tops}"


# ==================================================================================================
# Sections
# ==================================================================================================
@section("environment", 5, 30, help="versions, GPU, and the measured bf16 matmul rate")
def environment(ctx: Context, out: dict) -> None:
    out.update(date=datetime.now(UTC).isoformat(timespec="seconds"), python=platform.python_version(),
               torch=torch.__version__, cuda=torch.version.cuda, device=str(ctx.device), cpus=os.cpu_count(),
               machine=platform.machine())
    for module in ("torchvision", "kornia", "numpy", "cv2", "triton"):
        try:
            out[module] = getattr(importlib.import_module(module), "__version__", "?")
        except ImportError:
            out[module] = None
    out["git_commit"] = _git_commit()
    if ctx.device.type == "cuda":
        props = torch.cuda.get_device_properties(ctx.device)
        out.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                   gpu_memory_gib=round(props.total_memory / GIB, 1), multiprocessors=props.multi_processor_count)
    dtype = torch.bfloat16 if ctx.device.type == "cuda" else torch.float32
    n = ctx.sizes.matmul_n
    a = torch.randn(n, n, device=ctx.device, dtype=dtype)
    b = torch.randn(n, n, device=ctx.device, dtype=dtype)
    seconds = best_time(lambda: a @ b, ctx, reps=10, warmup=3)
    out["matmul"] = {"n": n, "dtype": str(dtype).removeprefix("torch."), "tflops": 2 * n ** 3 / seconds / 1e12}
    out["peak_tflops"] = out["matmul"]["tflops"]  # the ceiling MFU figures divide by


def _git_commit() -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=5, check=False).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# -- parity ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpCase:
    """One degradation op: ``fn(x, p)`` on linear light (or sRGB), ``encoding`` of its output."""

    fn: Callable[[torch.Tensor, dict], torch.Tensor]
    takes: str = "linear"      # "linear" or "srgb": which input it gets
    encoding: str = "linear"   # how its output becomes 8 bits: the export LUT or round(255 x)


def _op_cases() -> Registry[OpCase]:
    from degradations import (
        adjust_exposure,
        apply_matrix,
        highlights_shadows,
        kosugi_edit,
        linear_to_srgb,
        luminance,
        poisson_gaussian_noise,
        srgb_to_linear,
        white_balance_matrix,
    )
    from degradations.white_balance import incremental_to_source

    ops: Registry[OpCase] = Registry("parity op")
    ops.add("srgb_to_linear", OpCase(lambda x, p: srgb_to_linear(x), takes="srgb"))
    ops.add("linear_to_srgb", OpCase(lambda x, p: linear_to_srgb(x), encoding="srgb"))
    ops.add("luminance", OpCase(lambda x, p: luminance(x)))
    for mode in ("gain", "dng_tone"):
        ops.add(f"adjust_exposure/{mode}", OpCase(lambda x, p, mode=mode: adjust_exposure(x, p["ev"], mode=mode)))
    ops.add("white_balance", OpCase(lambda x, p: apply_matrix(
        x, white_balance_matrix(*incremental_to_source(p["d_temp"], p["d_tint"])))))
    ops.add("highlights_shadows/global", OpCase(lambda x, p: highlights_shadows(
        x, p["highlights"] / 2, p["shadows"] / 2, halo=False)))
    ops.add("highlights_shadows/halo", OpCase(lambda x, p: highlights_shadows(x, p["highlights"], p["shadows"])))
    ops.add("poisson_gaussian_noise", OpCase(lambda x, p: poisson_gaussian_noise(
        x, p["shot"], p["read"], p["eps"], p["gains"])))
    ops.add("kosugi_edit", OpCase(lambda x, p: kosugi_edit(
        x, p["ev"], p["d_temp"] / 100, p["d_tint"] / 100, p["highlights"] / 100, p["shadows"] / 100)))
    return ops


def _op_params(b: int, shape: tuple[int, ...], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float, *size: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*(size or (b,)), generator=g)

    return {"ev": uniform(-3, 0.5), "d_temp": uniform(-60, 60), "d_tint": uniform(-40, 40),
            "highlights": uniform(-100, 100), "shadows": uniform(-100, 100), "shot": uniform(0, 0.01),
            "read": uniform(0, 1e-4), "eps": torch.randn(b, *shape, generator=g), "gains": uniform(0.5, 2, b, 3)}


def _to_8bit(y: torch.Tensor, encoding: str) -> torch.Tensor:
    from degradations.transfer import linear_to_uint8

    y = y.float().clamp(0, 1)
    return linear_to_uint8(y) if encoding == "linear" else (y * 255).round().to(torch.uint8)


def compare(cpu: torch.Tensor, dev: torch.Tensor, encoding: str | None) -> dict:
    """Max abs error (float outputs) and 8-bit mismatch rate of a CPU and a device result."""
    dev = dev.cpu()
    if cpu.dtype == torch.uint8:
        diff = (cpu.int() - dev.int()).abs()
        return {"max_abs_err": None, "mismatch_8bit": float((diff > 0).float().mean()),
                "max_code_diff": int(diff.max()) if diff.numel() else 0, "values": cpu.numel()}
    a, b = _to_8bit(cpu, encoding), _to_8bit(dev, encoding)
    return {"max_abs_err": float((cpu.double() - dev.double()).abs().max()),
            "mismatch_8bit": float((a != b).float().mean()),
            "max_code_diff": int((a.int() - b.int()).abs().max()), "values": cpu.numel()}


@section("parity", 10, 60, requires=("kornia",), help="every degradation op, CPU vs the device")
def parity(ctx: Context, out: dict) -> None:
    from parity_degradations import cases, smooth_u8

    from degradations import degrade, degrade_batch_uint8, srgb_to_linear

    s, dev = ctx.sizes, ctx.device
    srgb = smooth_u8(s.parity_batch, 3, s.parity_size).float() / 255
    lin = srgb_to_linear(srgb)
    params = _op_params(s.parity_batch, tuple(srgb.shape[1:]))
    params_dev = {k: v.to(dev) for k, v in params.items()}
    rows = out.setdefault("ops", [])
    ops = _op_cases()
    for name in ops.names():
        case = ops.get(name)
        x = srgb if case.takes == "srgb" else lin
        with torch.no_grad():
            ref, got = case.fn(x, params), case.fn(x.to(dev), params_dev)
        rows.append({"op": name, **compare(ref, got, case.encoding)})
    for name, preset, c in cases():
        x = smooth_u8(s.parity_batch, c, s.parity_size)
        p = [preset.sample(1, f"{name}/{i}.png") for i in range(s.parity_batch)]
        xf = x.float() / 255
        with torch.no_grad():
            f_cpu = degrade(xf, p, options=preset.options)
            f_dev = degrade(xf.to(dev), p, options=preset.options)
        rows.append({"op": f"degrade float32 [{name}]", **compare(f_cpu, f_dev, "srgb")})
        rows.append({"op": f"degrade_batch_uint8 [{name}]", **compare(
            degrade_batch_uint8(x, p, preset=preset), degrade_batch_uint8(x.to(dev), p, preset=preset), None)})
    floats = [r["max_abs_err"] for r in rows if r["max_abs_err"] is not None]
    out["max_abs_err_float32"] = max(floats) if floats else None
    out["max_mismatch_8bit"] = max(r["mismatch_8bit"] for r in rows)
    out["max_mismatch_8bit_uint8_path"] = max(r["mismatch_8bit"] for r in rows if r["op"].startswith("degrade_batch"))


# -- degradation throughput --------------------------------------------------------------------------
@section("throughput", 30, max_s=120, requires=("kornia",),
         help="degradation img/s, eager and compiled, vs the CPU")
def throughput(ctx: Context, out: dict) -> None:
    from parity_degradations import smooth_u8
    from parity_degradations import throughput as uint8_rate

    from degradations import degrade, load_preset, params_to_tensors

    s, dev = ctx.sizes, ctx.device
    preset = load_preset("paper")
    out.update(preset="paper", cpu_threads=torch.get_num_threads(), cpu_batch=s.cpu_batch)
    out["cpu_uint8_img_s"] = {str(size): uint8_rate(torch.device("cpu"), size, s.cpu_batch, preset, s.reps)
                              for size in s.throughput_sizes}
    rows = out.setdefault("rows", [])
    cases = [(size, b) for size in s.throughput_sizes for b in s.throughput_batches]

    def float_inputs(size: int, b: int) -> tuple[torch.Tensor, dict]:
        x = (smooth_u8(b, 3, size).float() / 255).to(dev)
        return x, params_to_tensors([preset.sample(0, f"t{i}") for i in range(b)], dev)

    for size, b in cases:  # eager first: the target needs these; compiling may take long
        if not ctx.budget.allows(10 * s.estimate_scale):
            out.setdefault("not_measured", []).append(f"eager {size}x{size} B={b}: time budget")
            continue
        rows.append({"path": "uint8", "mode": "eager", "size": size, "batch": b,
                     "img_s": uint8_rate(dev, size, b, preset, s.reps)})
        x, t = float_inputs(size, b)
        with torch.no_grad():
            sec = best_time(lambda x=x, t=t: degrade(x, t, options=preset.options), ctx, s.reps)
        rows.append({"path": "float32", "mode": "eager", "size": size, "batch": b, "img_s": b / sec})
        print(f"  {size}x{size} B={b}: uint8 {rows[-2]['img_s']:.0f}, float32 {rows[-1]['img_s']:.0f} img/s",
              flush=True)
    top = max(s.throughput_sizes)
    best = max((r["img_s"] for r in rows if r["path"] == "uint8" and r["size"] == top), default=None)
    out.update(largest_size=top, best_uint8_img_s_largest=best,
               speedup_vs_cpu_largest=best / out["cpu_uint8_img_s"][str(top)] if best else None)
    if not s.compile:
        out["compile"] = "torch.compile skipped (cpu smoke)"
        print(f"  {out['compile']}", flush=True)
        return
    compiled = torch.compile(degrade)
    for size, b in cases:
        if not ctx.budget.allows(20 * s.estimate_scale):
            out.setdefault("not_measured", []).append(f"compiled {size}x{size} B={b}: time budget")
            continue
        x, t = float_inputs(size, b)
        try:
            with torch.no_grad():
                t0 = time.perf_counter()
                compiled(x, t, options=preset.options)
                ctx.sync()
                first = time.perf_counter() - t0
                sec = best_time(lambda x=x, t=t: compiled(x, t, options=preset.options), ctx, s.reps)
        except Exception as err:  # noqa: BLE001  (a compile failure is a finding; the eager rows stand)
            out["compile_error"] = f"{type(err).__name__}: {err}"[:2000]
            print(f"  torch.compile failed: {out['compile_error'][:300]}", flush=True)
            return
        rows.append({"path": "float32", "mode": "compiled", "size": size, "batch": b, "img_s": b / sec,
                     "first_call_s": round(first, 2)})
        print(f"  {size}x{size} B={b}: float32 compiled {b / sec:.0f} img/s (first call {first:.1f} s)", flush=True)


# -- make-dataset ------------------------------------------------------------------------------------
def decode_encode_floor(dataset, workers: int, out_dir: Path, chunk: int = 32) -> float:
    """img/s of the staged make-dataset pipeline with the degrade left out: worker processes decode
    (read, hash, sample parameters) and encode + write every image, the main process only relays."""
    from degradations import load_preset
    from lldif_bench.datasets.pipeline import BuildJob, decode_chunk, encode_chunk, worker_pool

    job = BuildJob(dataset=dataset, preset=load_preset("paper"), seed=0, out=out_dir, device="cpu")
    items = list(enumerate(dataset.build_records()))
    t0 = time.perf_counter()
    with worker_pool(max(1, workers), job) as pool:
        decodes = [pool.submit(decode_chunk, items[i:i + chunk]) for i in range(0, len(items), chunk)]
        encodes = [pool.submit(encode_chunk, [(i, r, info, img) for i, r, img, info in f.result() if img is not None])
                   for f in decodes]
        written = sum(len(f.result()) for f in encodes)
    seconds = time.perf_counter() - t0
    if written != len(items):
        raise RuntimeError(f"decode+encode floor wrote {written} of {len(items)} images")
    return written / seconds


@section("make_dataset", 40, 150, help="make-dataset end to end vs the decode+encode floor")
def make_dataset(ctx: Context, out: dict) -> None:
    from bench_make_dataset import make_source

    from lldif_bench.datasets import ADAPTERS
    from lldif_bench.datasets.build import build_lowlight

    s = ctx.sizes
    workers = s.md_workers or max(1, (os.cpu_count() or 2) - 1)
    t0 = time.perf_counter()
    basic = make_source(ctx.scratch / "md_source", s.md_images)
    out.update(images=s.md_images, size="100x100", workers=workers, batch=s.md_batch, device=ctx.device.type,
               source_generation_s=round(time.perf_counter() - t0, 2))
    ctx.state["md_source"] = basic
    out["floor_img_s"] = decode_encode_floor(ADAPTERS.get("rafdb")(basic), workers, ctx.scratch / "md_floor")
    print(f"  decode+encode floor: {out['floor_img_s']:.0f} img/s ({workers} workers)", flush=True)
    t0 = time.perf_counter()
    summary = build_lowlight(ADAPTERS.get("rafdb")(basic), ctx.scratch / "md_out", device=ctx.device.type,
                             workers=workers, batch_size=s.md_batch)
    seconds = time.perf_counter() - t0
    if summary.ok != s.md_images:
        raise RuntimeError(f"make-dataset wrote {summary.ok} of {s.md_images} images: {summary.format()}")
    out["end_to_end_img_s"] = s.md_images / seconds
    out["vs_floor"] = out["end_to_end_img_s"] / out["floor_img_s"]
    print(f"  end to end: {out['end_to_end_img_s']:.0f} img/s = {out['vs_floor']:.2f}x the floor", flush=True)


# -- training ----------------------------------------------------------------------------------------
def endless(loader) -> Iterator:
    epoch = 0
    while True:
        yield from loader.epoch(epoch)
        epoch += 1


def train_step_fn(model, stage: str, ctx: Context, ema_decay: float | None = None) -> Callable:
    """One engine-like training step: forward + loss under bf16 autocast, the loss read back to the
    host (the engine's one sync per step), backward, Adam step, and the EMA update when the stage
    has one (``ema_decay``)."""
    from lldif_bench.training.ema import ParamEMA
    from lldif_bench.training.engine import trainable_groups
    from lldif_bench.training.optim import build_optimizer

    optimizer = build_optimizer("adam", trainable_groups(model, 3.5e-4), 3.5e-4, 1e-4, {})
    ema = ParamEMA(model, ema_decay) if ema_decay else None

    def step(batch) -> float:
        batch.data["stage"] = stage
        with ctx.autocast():
            loss, _ = model.loss(model(batch.data), batch.data)
        value = float(loss.detach())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(model)
        return value

    return step


def training_flops_per_image(model, batch, ctx: Context) -> float:
    """3 x the counted forward FLOPs per image (backward ~ 2x forward; bench_lldif's convention, since
    FlopCounterMode overcounts depthwise-conv backward). Frozen parts (the stage-2 teacher) need no
    backward, so this overstates a stage's work: MFU figures built on it are upper bounds."""
    from bench_lldif import counted_flops

    def forward() -> None:
        with ctx.autocast():
            model.loss(model(batch.data), batch.data)

    return 3 * counted_flops(forward) / batch.local_n


def measure_stage(model, stage: str, loader, ctx: Context, ema_decay: float | None = None) -> tuple[dict, Any]:
    """img/s fed by the packed loader and on one resident batch, data wait, peak memory, FLOPs; and
    the resident batch."""
    s = ctx.sizes
    model.train()
    step = train_step_fn(model, stage, ctx, ema_decay)
    it = endless(loader)
    reset_peak_memory(ctx)
    first = next(it)
    for _ in range(s.warmup_steps):
        step(next(it))
    ctx.sync()
    fetch, t0 = 0.0, time.perf_counter()
    images = 0
    for _ in range(s.timed_steps):
        tf = time.perf_counter()
        batch = next(it)
        fetch += time.perf_counter() - tf
        step(batch)
        images += batch.local_n
    ctx.sync()
    loader_s = time.perf_counter() - t0
    resident_s = best_time(lambda: [step(first) for _ in range(s.timed_steps)], ctx, reps=1, warmup=0)
    row = {"img_s": images / loader_s, "img_s_resident_batch": first.local_n * s.timed_steps / resident_s,
           "data_wait": fetch / loader_s, "peak_memory_gib": peak_memory_gib(ctx)}
    row["slowdown_vs_resident"] = 1 - row["img_s"] / row["img_s_resident_batch"]
    with torch.no_grad():
        row["train_gflop_per_image"] = training_flops_per_image(model, first, ctx) / 1e9
    peak = finite(ctx.results.get("environment", {}).get("peak_tflops"))
    row["achieved_tflops"] = row["img_s"] * row["train_gflop_per_image"] / 1e3
    row["mfu"] = row["achieved_tflops"] / peak if peak else None
    return row, first


def full_run_estimate(stages: list[dict], train_images: int, peak_tflops: float | None) -> dict:
    """Training hours of a full run (every stage's epochs) at each stage's measured img/s, and the
    epoch-weighted img/s and MFU over the run. Evaluation passes are not counted."""
    seconds = sum(st["epochs"] * train_images / st["img_s"] for st in stages)
    images = sum(st["epochs"] * train_images for st in stages)
    gflop = sum(st["epochs"] * train_images * st["train_gflop_per_image"] for st in stages)
    return {"train_images": train_images, "epochs": {st["stage"]: st["epochs"] for st in stages},
            "hours": seconds / 3600, "img_s": images / seconds,
            "mfu": gflop / seconds / 1e3 / peak_tflops if peak_tflops else None}


@section("training", 60, 180, requires=("kornia",), help="train img/s, data wait, memory, MFU, full-run estimate")
def training(ctx: Context, out: dict) -> None:
    from bench_training import make_dataset as make_image_folder

    from lldif_bench.datasets import open_dataset
    from lldif_bench.datasets.packed import pack_dataset
    from lldif_bench.methods import load_all_methods
    from lldif_bench.reports.reproduce import PAPER_TRAIN_IMAGES
    from lldif_bench.training.batches import PackedBatches
    from lldif_bench.training.config import AugmentConfig
    from lldif_bench.training.distributed import DistContext
    from lldif_bench.training.engine import enter_stage, method_stages

    s, dev = ctx.sizes, ctx.device
    root = make_image_folder(ctx.scratch / "train_source", s.train_images, n_test=8)
    packed = pack_dataset(open_dataset(root), s.image_size, workers=max(1, min(8, os.cpu_count() or 1)),
                          progress=False)
    channels_last = dev.type == "cuda"
    loader = PackedBatches(packed, "train", s.train_batch, DistContext(device=dev), train=True,
                           augment=AugmentConfig(), channels_last=channels_last)
    out.update(image_size=s.image_size, batch=s.train_batch, amp="bf16" if dev.type == "cuda" else "off (cpu)",
               channels_last=channels_last, timed_steps=s.timed_steps, models=[list(m) for m in s.train_models],
               note="text encoder: hash stand-in (frozen; its caption bank is precomputed, so step cost is alike)")
    registry = load_all_methods()
    rows = out.setdefault("rows", [])
    for label, method, options in s.train_models:
        builder = registry.get(method)
        torch.manual_seed(0)
        model = builder(packed.num_classes, num_train=len(loader.rows), pretrained="scratch",
                        image_size=s.image_size, **options).to(dev)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        stages = method_stages(builder)
        for spec in stages:
            enter_stage(model, spec["name"])
            if not ctx.budget.allows(15 * s.estimate_scale):
                out.setdefault("not_measured", []).append(f"{label} stage {spec['name']}: time budget")
                continue
            measured, batch = measure_stage(model, spec["name"], loader, ctx, spec.get("ema_decay"))
            row = {"model": label, "stage": spec["name"], "epochs": spec.get("epochs"),
                   "ema_decay": spec.get("ema_decay"), **measured}
            rows.append(row)
            ctx.state.setdefault("train_batches", {})[(label, spec["name"])] = batch  # for the diagnosis
            print(f"  {label} stage {spec['name']}: {row['img_s']:.0f} img/s (resident batch "
                  f"{row['img_s_resident_batch']:.0f}), data wait {row['data_wait']:.1%}", flush=True)
        staged = [r for r in rows if r["model"] == label and r.get("epochs")]
        if staged and len(staged) == sum(1 for st in stages if st.get("epochs")):
            peak = finite(ctx.results.get("environment", {}).get("peak_tflops"))
            key = label.replace("-", "_")
            out[f"{key}_full_run"] = full_run_estimate(staged, PAPER_TRAIN_IMAGES["rafdb"], peak)
            out[f"{key}_full_run"]["train_images_source"] = "LL-RAF-DB train split (paper Sec. 4.1)"
            out[f"{key}_data_wait"] = max(r["data_wait"] for r in staged)
        if label == "lldif":
            ctx.state["lldif"] = (model, stages)
        del model


# -- inference ---------------------------------------------------------------------------------------
@section("inference", 15, 60, help="LLDif label-free inference cost vs diffusion steps T")
def inference(ctx: Context, out: dict) -> None:
    from bench_lldif import timed

    from lldif_bench.models.lldif import build
    from lldif_bench.models.lldif.diffusion import EPDDiffusion

    s, dev = ctx.sizes, ctx.device
    b, size = s.infer_batch, s.image_size
    torch.manual_seed(0)
    model = build(7, num_train=1, pretrained=None, image_size=size, **s.lldif_options).to(dev).eval()
    x = torch.randn(b, 3, size, size, device=dev)
    if dev.type == "cuda":
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    lm = torch.rand(b, 68, 2, device=dev) * size
    d = model.cfg.diffusion
    out.update(batch=b, image_size=size, config=s.lldif_options.get("config"), rows=[])
    reset_peak_memory(ctx)
    with torch.no_grad():
        for steps in s.infer_steps:
            model.student.diffusion = EPDDiffusion(steps, d.linear_start, d.linear_end, d.schedule,
                                                   d.parameterization).to(dev)

            def infer():
                with ctx.autocast():
                    model.student(x, lm)

            sec = timed(infer, dev, s.infer_iters)
            out["rows"].append({"T": steps, "ms_per_batch": sec * 1e3, "img_s": b / sec})
    base = out["rows"][0]["ms_per_batch"]
    for row in out["rows"]:
        row["vs_first"] = row["ms_per_batch"] / base
    out["peak_memory_gib"] = peak_memory_gib(ctx)


# ==================================================================================================
# Targets (issue 7 item 2) and diagnoses
# ==================================================================================================
@dataclass(frozen=True)
class Target:
    key: str
    label: str
    path: tuple[str, ...]        # section, then keys into its results
    op: str                      # ">=" or "<="
    threshold: float
    unit: str = ""
    diagnose: str | None = None  # a DIAGNOSES name, run when the target is missed


COMPARE = {">=": operator.ge, "<=": operator.le}
TARGETS = (
    Target("degrade_speedup", "degradation transform (uint8, 224x224) vs the CPU path", (
        "throughput", "speedup_vs_cpu_largest"), ">=", 20, "x", "degrade"),
    Target("make_dataset_img_s", "make-dataset end to end at 100x100", (
        "make_dataset", "end_to_end_img_s"), ">=", 5000, "img/s", "make_dataset"),
    Target("make_dataset_vs_floor", "make-dataset vs the decode+encode floor", (
        "make_dataset", "vs_floor"), ">=", 0.5, "x", "make_dataset"),
    Target("lldif_train_img_s", "LLDif base training, full-run (epoch-weighted) img/s at 112x112", (
        "training", "lldif_full_run", "img_s"), ">=", 3000, "img/s", "training"),
    Target("lldif_train_mfu", "LLDif base training, share of the measured bf16 peak (upper bound)", (
        "training", "lldif_full_run", "mfu"), ">=", 0.20, "", "training"),
    Target("lldif_data_wait", "LLDif training, share of step time waiting for data (worst stage)", (
        "training", "lldif_data_wait"), "<=", 0.10, "", "training"),
    Target("lldif_full_run_hours", "full LL-RAF-DB LLDif run (stages 0-2, paper epochs, training only)", (
        "training", "lldif_full_run", "hours"), "<=", 1.0, "h", "training"),
    Target("parity_float32", "parity: max abs error CPU vs device, float32 (every op)", (
        "parity", "max_abs_err_float32"), "<=", 2e-5),
    Target("parity_uint8", "parity: 8-bit mismatch rate of the uint8 export path", (
        "parity", "max_mismatch_8bit_uint8_path"), "<=", 1e-3),
)


def lookup(results: dict, path: tuple[str, ...]) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def evaluate_target(target: Target, value: Any, smoke: bool) -> dict:
    """pass / fail / not measured (or "n/a (cpu smoke)") for one target and its measured value."""
    v = finite(value)
    if smoke:
        status = "n/a (cpu smoke)"
    elif v is None:
        status = "not measured"
    else:
        status = "pass" if COMPARE[target.op](v, target.threshold) else "fail"
    return {"key": target.key, "label": target.label, "value": v, "op": target.op,
            "threshold": target.threshold, "unit": target.unit, "status": status}


def fmt(v: Any, digits: int = 3) -> str:
    """A number for a table cell: empty when missing, 3 significant digits, small values in e-notation."""
    v = finite(v) if not isinstance(v, str) else v
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
        return f"{v:.{digits - 1}e}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def target_line(t: dict) -> str:
    status = t["status"].upper() if t["status"] in ("pass", "fail") else t["status"]
    line = f"[{status}] {t['label']}: {fmt(t['value']) or '-'} {t['unit']} (target {t['op']} {fmt(t['threshold'])})"
    if t.get("bottleneck"):
        line += f"\n        bottleneck: {t['bottleneck']}"
    return line


DIAGNOSES: Registry[Callable[[Context], dict]] = Registry("diagnosis")


@DIAGNOSES.register("degrade", help="torch.profiler over the uint8 degrade at the largest size and batch")
def diagnose_degrade(ctx: Context) -> dict:
    from parity_degradations import smooth_u8

    from degradations import degrade_batch_uint8, load_preset

    s = ctx.sizes
    size, b = max(s.throughput_sizes), max(s.throughput_batches)
    preset = load_preset("paper")
    x = smooth_u8(b, 3, size).to(ctx.device)
    params = [preset.sample(0, f"t{i}") for i in range(b)]
    degrade_batch_uint8(x, params, preset=preset)
    prof = profile_top(lambda: degrade_batch_uint8(x, params, preset=preset), ctx)
    return {"profile": prof, "bottleneck": f"degrade_batch_uint8 {size}x{size} B={b}: {describe_profile(prof)}"}


@DIAGNOSES.register("make_dataset", help="stage rates vs end to end, and a cProfile of the main process")
def diagnose_make_dataset(ctx: Context) -> dict:
    from lldif_bench.datasets import ADAPTERS
    from lldif_bench.datasets.build import build_lowlight

    md, tp = ctx.results.get("make_dataset", {}), ctx.results.get("throughput", {})
    floor, e2e = finite(md.get("floor_img_s")), finite(md.get("end_to_end_img_s"))
    degrade_100 = max((r["img_s"] for r in tp.get("rows", []) if r["path"] == "uint8" and r["size"] == 100),
                      default=None)
    parts = []
    if floor is not None and floor < 5000:
        parts.append(f"decode+encode in {md.get('workers')} worker processes alone reaches only {floor:.0f} img/s")
    if degrade_100 is not None and degrade_100 < 5000:
        parts.append(f"the degrade on the device alone reaches only {degrade_100:.0f} img/s at 100x100")
    if not parts and e2e is not None:
        parts.append(f"the staged main process (batching, images pickled to/from the workers, host<->device "
                     f"copies): floor {fmt(floor)} and degrade {fmt(degrade_100)} img/s each beat end to end "
                     f"{e2e:.0f} img/s")
    result: dict[str, Any] = {"floor_img_s": floor, "degrade_100_img_s": degrade_100, "end_to_end_img_s": e2e}
    source = ctx.state.get("md_source")
    if source is not None:
        n = min(ctx.sizes.md_profile_images, ctx.sizes.md_images)
        profiler = cProfile.Profile()
        profiler.enable()
        build_lowlight(ADAPTERS.get("rafdb")(source), ctx.scratch / "md_profile", device=ctx.device.type,
                       workers=md.get("workers") or 1, batch_size=ctx.sizes.md_batch, limit=n)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(8)
        result["main_process_profile"] = text.getvalue()[-4000:]
        top = _top_functions(profiler, 3)
        parts.append(f"main process busiest in: {top}")
    result["bottleneck"] = "; ".join(parts) or "no stage measured"
    return result


def _top_functions(profiler: cProfile.Profile, n: int) -> str:
    stats = pstats.Stats(profiler).stats  # {(file, line, func): (cc, nc, tt, ct, callers)}
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
    return ", ".join(f"{func} ({Path(file).name}:{line}) {tt:.2f} s" for (file, line, func), (_, _, tt, _, _) in rows)


@DIAGNOSES.register("training", help="the loader's share, and torch.profiler over the slowest LLDif stage")
def diagnose_training(ctx: Context) -> dict:
    rows = [r for r in ctx.results.get("training", {}).get("rows", []) if r["model"] == "lldif"]
    if not rows or "lldif" not in ctx.state:
        return {"bottleneck": "LLDif training was not measured"}
    from lldif_bench.training.engine import enter_stage

    parts = []
    worst_wait = max(rows, key=lambda r: r["data_wait"])
    if worst_wait["data_wait"] > 0.10:
        parts.append(f"the loader: stage {worst_wait['stage']} spends {worst_wait['data_wait']:.0%} of its step "
                     f"loop waiting for the next batch (memmap read, host->device copy, augmentation)")
    slowest = min(rows, key=lambda r: r["img_s"])
    model, stages = ctx.state["lldif"]
    names = [st["name"] for st in stages]
    for name in names[:names.index(slowest["stage"]) + 1]:  # stage hooks in order, as the harness does
        enter_stage(model, name)
    step = train_step_fn(model, slowest["stage"], ctx, slowest.get("ema_decay"))
    batch = ctx.state["train_batches"][("lldif", slowest["stage"])]
    step(batch)
    prof = profile_top(lambda: [step(batch) for _ in range(ctx.sizes.profile_steps)], ctx)
    parts.append(f"slowest stage {slowest['stage']} ({slowest['img_s']:.0f} img/s): {describe_profile(prof)}")
    return {"profile": prof, "stage": slowest["stage"], "bottleneck": "; ".join(parts)}


def evaluate_targets(ctx: Context, diagnose: bool = True) -> list[dict]:
    """Evaluate every target; run each needed diagnosis once (GPU: for misses; smoke: all, to keep
    the code paths working), guarded and within the budget."""
    rows = [evaluate_target(t, lookup(ctx.results, t.path), ctx.smoke) for t in TARGETS]
    done: dict[str, dict] = {}
    for target, row in zip(TARGETS, rows):
        if not (diagnose and target.diagnose and (ctx.smoke or row["status"] == "fail")):
            continue
        if target.diagnose not in done:
            fn = DIAGNOSES.get(target.diagnose)
            done[target.diagnose] = run_guarded(f"diagnose {target.diagnose}",
                                                lambda c, out, fn=fn: out.update(fn(c)), ctx, 15, 60)
        record = done[target.diagnose]
        row["bottleneck"] = record["results"].get("bottleneck") or f"diagnosis {record['status']}: " \
            f"{record.get('error') or record.get('reason')}"
    ctx.state["diagnoses"] = done
    return rows


# ==================================================================================================
# Report: JSON and Markdown
# ==================================================================================================
def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    env = report["sections"].get("environment", {}).get("results", {})
    res = {name: rec.get("results", {}) for name, rec in report["sections"].items()}
    head = (f"# Device check ({report['mode']}), {env.get('date', report['started'])}\n\n"
            f"{env.get('gpu') or env.get('device', '?')}; torch {env.get('torch', '?')}, CUDA {env.get('cuda')}, "
            f"torchvision {env.get('torchvision')}, kornia {env.get('kornia')}, Python {env.get('python')}, "
            f"{env.get('cpus')} CPUs; measured bf16 matmul {fmt((env.get('matmul') or {}).get('tflops'))} TFLOP/s; "
            f"commit {env.get('git_commit') or 'unknown'}\n")
    parts = [head, "## Targets\n", md_table(["target", "measured", "goal", "result", "bottleneck"], [
        [t["label"], f"{fmt(t['value'])} {t['unit']}".strip(), f"{t['op']} {fmt(t['threshold'])} {t['unit']}".strip(),
         t["status"], t.get("bottleneck", "")] for t in report["targets"]])]
    if res.get("parity", {}).get("ops"):
        parts += ["\n## Parity, CPU vs device\n", md_table(
            ["op", "max abs err (float32)", "8-bit mismatch rate", "max code diff"],
            [[r["op"], r["max_abs_err"], r["mismatch_8bit"], r["max_code_diff"]] for r in res["parity"]["ops"]])]
    tp = res.get("throughput", {})
    if tp.get("rows"):
        batches = sorted({r["batch"] for r in tp["rows"]})
        keys = sorted({(r["path"], r["mode"], r["size"]) for r in tp["rows"]}, key=lambda k: (k[2], k[0], k[1]))
        table = [[f"{p} {m}", f"{sz}x{sz}"] + [next((r["img_s"] for r in tp["rows"] if (r["path"], r["mode"],
                 r["size"], r["batch"]) == (p, m, sz, b)), None) for b in batches] for p, m, sz in keys]
        table += [["uint8 on the CPU", f"{sz}x{sz}"] + [v if b == batches[0] else None for b in batches]
                  for sz, v in ((int(k), v) for k, v in tp.get("cpu_uint8_img_s", {}).items())]
        parts += ["\n## Degradation throughput (img/s)\n",
                  md_table(["path", "size"] + [f"B={b}" for b in batches], table),
                  (f"\nCPU rows: batch {tp.get('cpu_batch')}, {tp.get('cpu_threads')} threads. "
                   f"{tp.get('compile', '')}{tp.get('compile_error', '')[:300]}")]
    md = res.get("make_dataset", {})
    if md.get("images"):
        parts += ["\n## make-dataset\n", md_table(
            ["images", "workers", "batch", "end to end img/s", "decode+encode floor img/s", "ratio"],
            [[md.get("images"), md.get("workers"), md.get("batch"), md.get("end_to_end_img_s"),
              md.get("floor_img_s"), md.get("vs_floor")]])]
    tr = res.get("training", {})
    if tr.get("rows"):
        parts += [(f"\n## Training ({tr.get('image_size')}px, batch {tr.get('batch')}, amp {tr.get('amp')}, "
                   f"channels_last {tr.get('channels_last')})\n"), md_table(
                      ["model", "stage", "img/s", "img/s resident batch", "data wait", "peak GiB",
                       "train GFLOP/img", "MFU"],
                      [[r["model"], r["stage"], r["img_s"], r["img_s_resident_batch"], r["data_wait"],
                        r["peak_memory_gib"], r["train_gflop_per_image"], r["mfu"]] for r in tr["rows"]])]
        for key in sorted(k for k in tr if k.endswith("_full_run")):
            fr = tr[key]
            parts.append(f"\nFull {key.removesuffix('_full_run')} run on {fr['train_images']} train images, epochs "
                         f"{fr['epochs']}: {fmt(fr['hours'])} h of training at {fmt(fr['img_s'])} img/s "
                         f"(MFU {fmt(fr['mfu'])}, an upper bound).")
    inf = res.get("inference", {})
    if inf.get("rows"):
        parts += [(f"\n## LLDif label-free inference (batch {inf.get('batch')}, {inf.get('image_size')}px, "
                   f"config {inf.get('config')})\n"), md_table(
                      ["T", "ms/batch", "img/s", "x first T"],
                      [[str(r["T"]), r["ms_per_batch"], r["img_s"], r["vs_first"]] for r in inf["rows"]])]
    skipped = [f"{name}: {item}" for name, r in res.items() for item in r.get("not_measured", [])]
    if skipped:
        parts.append("\nNot measured (time budget): " + "; ".join(skipped))
    parts += ["\n## Sections\n", md_table(["section", "status", "seconds", "note"], [
        [name, rec["status"], rec["seconds"], (rec.get("reason") or rec.get("error") or "").replace("|", "/")]
        for name, rec in report["sections"].items()])]
    return "\n".join(parts) + "\n"


def write_report(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("device_check.json", json.dumps(report, indent=1, default=str)),
                       ("device_check.md", render_markdown(report))):
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out_dir / name)


# ==================================================================================================
# Main
# ==================================================================================================
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU, no compile (CI)")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds for the whole run (default 420)")
    ap.add_argument("--out", help="output folder (default: $OUT, else the working directory)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present) | cuda | cpu")
    ap.add_argument("--sections", default="", help=f"comma-separated subset of {','.join(SECTIONS.names())}")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from lldif_bench.device import resolve_device

    smoke = args.cpu_smoke
    device = torch.device("cpu") if smoke else resolve_device(args.device)
    if device.type != "cuda" and not smoke:
        print(f"device_check: no CUDA device (torch {torch.__version__}); the full run needs a GPU. "
              f"Use --cpu-smoke for the CPU check.", flush=True)
        return 2
    out_dir = Path(args.out or os.environ.get("OUT") or ".")
    chosen = [n for n in args.sections.split(",") if n] or SECTIONS.names()
    unknown = [n for n in chosen if n not in SECTIONS.names()]
    if unknown or args.budget <= 0:
        print(f"device_check: --sections takes names from {', '.join(SECTIONS.names())} (got {', '.join(unknown)})"
              if unknown else f"device_check: --budget must be a positive number of seconds, got {args.budget}",
              file=sys.stderr)
        return 2
    report: dict[str, Any] = {"format": "lldif-bench device check", "version": 1,
                              "mode": "cpu-smoke" if smoke else "gpu",
                              "started": datetime.now(UTC).isoformat(timespec="seconds"),
                              "budget_s": args.budget, "sizes": asdict(SMOKE if smoke else FULL),
                              "sections": {}, "targets": []}
    print(f"device_check ({report['mode']}) on {device}, budget {args.budget:.0f} s, writing to {out_dir}",
          flush=True)
    threads = torch.get_num_threads()
    if smoke:  # tiny tensors: one thread is fastest, and on a shared machine far faster than several
        torch.set_num_threads(1)
    try:
        run_all(report, chosen, device, out_dir, args.budget, smoke)
    finally:
        torch.set_num_threads(threads)
    print("\nTargets (issue 7 item 2):")
    for t in report["targets"]:
        print("  " + target_line(t))
    failed = [n for n, r in report["sections"].items() if r["status"] in ("error", "timeout")]
    print(f"\ndone in {report['elapsed_s']:.0f} s; wrote {out_dir / 'device_check.json'} and device_check.md"
          + (f"; sections that failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


def run_all(report: dict, chosen: list[str], device: torch.device, out_dir: Path, budget_s: float,
            smoke: bool) -> None:
    """Every chosen section in order, then the targets and their diagnoses; the report is rewritten
    after each step."""
    with tempfile.TemporaryDirectory(prefix="device_check_") as scratch:
        ctx = Context(SMOKE if smoke else FULL, device, Budget(budget_s), Path(scratch), smoke)
        for name in SECTIONS.names():
            if name not in chosen:
                continue
            sec = SECTIONS.get(name)
            report["sections"][name] = run_guarded(name, sec.run, ctx, sec.estimate_s, sec.max_s, sec.requires)
            write_report(report, out_dir)
        report["targets"] = evaluate_targets(ctx)
        for name, record in ctx.state.get("diagnoses", {}).items():
            report["sections"][f"diagnose {name}"] = record
        report["elapsed_s"] = round(ctx.budget.elapsed(), 1)
        write_report(report, out_dir)


if __name__ == "__main__":
    sys.exit(main())
