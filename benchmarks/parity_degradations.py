"""CPU vs CUDA parity (and GPU throughput) of the degradation pipeline.

CPU half (always): the uint8 export path is batch-invariant (whole batch == one image at a time)
and within one code value of the float64 analytic path, for the built-in presets, the kosugi
flavour and grey images.

CUDA half (when torch sees a GPU): the uint8 path gives the same bytes on CUDA as on the CPU
(reported as the count of differing values and the largest difference), the float32 path agrees
to 2e-5, and the transform stage's throughput at 224x224 for B in {64, 256, 1024} is compared with
the CPU (goal: >= 20x). Without a GPU the CUDA half is skipped with a clear line; exit code 0
means every check that ran passed.

    python benchmarks/parity_degradations.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from degradations import PipelineOptions, degrade, degrade_batch_uint8, load_preset
from degradations.presets import Preset


def smooth_u8(b: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, max(2, size // 8), max(2, size // 8), generator=g)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def cases() -> list[tuple[str, Preset, int]]:
    paper, realistic = load_preset("paper"), load_preset("realistic")
    kosugi = Preset(**{**paper.__dict__, "name": "paper/kosugi",
                       "options": PipelineOptions(**{**paper.options.to_dict(), "flavor": "kosugi"})})
    return [("paper", paper, 3), ("realistic", realistic, 3), ("kosugi", kosugi, 3),
            ("realistic grey", realistic, 1)]


def check(label: str, ok: bool, detail: str, failures: list[str]) -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {label}: {detail}")
    if not ok:
        failures.append(label)


def cpu_half(quick: bool, failures: list[str]) -> None:
    print("CPU checks")
    for name, preset, c in cases():
        x = smooth_u8(6 if quick else 12, c, 64)
        params = [preset.sample(0, f"{name}/{i}.png") for i in range(x.shape[0])]
        whole = degrade_batch_uint8(x, params, preset=preset)
        single = torch.cat([degrade_batch_uint8(x[i:i + 1], params[i:i + 1], preset=preset)
                            for i in range(x.shape[0])])
        check(f"{name}: batch == one by one", torch.equal(whole, single),
              f"{int((whole != single).sum())} differing values", failures)
        analytic = degrade(x.double() / 255, params, options=preset.options)
        diff = ((analytic * 255).round() - whole.double()).abs().max().item()
        check(f"{name}: uint8 path vs float64 analytic", diff <= 1, f"max {diff:.0f} code value(s)", failures)


def throughput(device: torch.device, size: int, b: int, preset: Preset, reps: int) -> float:
    x = smooth_u8(b, 3, size).to(device)
    params = [preset.sample(0, f"t{i}") for i in range(b)]
    degrade_batch_uint8(x, params, preset=preset)
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        degrade_batch_uint8(x, params, preset=preset)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return b / best


def cuda_half(quick: bool, failures: list[str]) -> None:
    if not torch.cuda.is_available():
        print(f"CUDA checks: skipped (torch {torch.__version__} sees no CUDA device)")
        return
    dev = torch.device("cuda")
    print(f"CUDA checks on {torch.cuda.get_device_name(0)}")
    for name, preset, c in cases():
        x = smooth_u8(8, c, 100)
        params = [preset.sample(1, f"{name}/{i}.png") for i in range(8)]
        cpu = degrade_batch_uint8(x, params, preset=preset)
        gpu = degrade_batch_uint8(x.to(dev), params, preset=preset).cpu()
        n = int((cpu != gpu).sum())
        worst = int((cpu.int() - gpu.int()).abs().max())
        check(f"{name}: uint8 CPU vs CUDA", worst <= 1 and n <= 0.001 * cpu.numel(),
              f"{n} of {cpu.numel()} values differ, max {worst}", failures)
        xf = x.float() / 255
        f_cpu = degrade(xf, params, options=preset.options)
        f_gpu = degrade(xf.to(dev), params, options=preset.options).cpu()
        d = (f_cpu - f_gpu).abs().max().item()
        check(f"{name}: float32 CPU vs CUDA", d <= 2e-5, f"max abs diff {d:.2e}", failures)
    preset = load_preset("paper")
    reps = 3 if quick else 5
    cpu_rate = throughput(torch.device("cpu"), 224, 16, preset, reps)
    print(f"  CPU transform stage, 224x224, B=16: {cpu_rate:.0f} img/s")
    for b in (64, 256) if quick else (64, 256, 1024):
        rate = throughput(dev, 224, b, preset, reps)
        print(f"  CUDA transform stage, 224x224, B={b}: {rate:.0f} img/s ({rate / cpu_rate:.1f}x CPU)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    failures: list[str] = []
    np.random.seed(0)
    cpu_half(args.quick, failures)
    cuda_half(args.quick, failures)
    print("all checks passed" if not failures else f"FAILED: {', '.join(failures)}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
