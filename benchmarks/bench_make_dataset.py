"""make-dataset throughput at 100x100: end-to-end vs the sum of its stages, and 2 workers vs 1.

Builds a RAF-DB-layout source of N random-ish 100x100 JPEGs, then in the same run measures
1. each stage alone, in this process: decode (read + decode), degrade (device batches, at the best
   torch thread count and at one thread), encode (encode + atomic write); the "sum-of-stages" rate
   is 1 / (t_decode + t_degrade + t_encode) per image;
2. ``build_lowlight`` end to end (planning, pipeline, journal, manifest, card) for each ``--workers``
   value (0 = in this process with torch's threads, 1 = in this process with one thread, N = N
   worker processes on the CPU), best of ``--repeat`` runs, each printed beside the stage sum.

Goals (issue 8): end-to-end >= 0.7x the sum-of-stages rate; 2 workers >= 1.5x 1 worker (CPU).

    python benchmarks/bench_make_dataset.py [--n 256] [--batch-size 64] [--device auto] [--workers 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures_datasets import label_image

from degradations import degrade_batch_uint8, load_preset
from lldif_bench.datasets import ADAPTERS
from lldif_bench.datasets.build import build_lowlight
from lldif_bench.device import resolve_device
from lldif_bench.imageio import atomic_write_bytes, decode_image, encode_image


def make_source(root: Path, n: int) -> Path:
    """RAF-DB basic layout with n aligned 100x100 JPEGs (n_train = 80%)."""
    basic = root / "basic"
    lines = []
    n_train = int(n * 0.8)
    for i in range(n):
        name = f"train_{i + 1:05d}.jpg" if i < n_train else f"test_{i - n_train + 1:04d}.jpg"
        label = i % 7
        lines.append(f"{name} {label + 1}")
        img = label_image(label, 100, 100, i)
        atomic_write_bytes(basic / "Image" / "aligned" / f"{name[:-4]}_aligned.jpg", encode_image(img, "jpg"))
    atomic_write_bytes(basic / "EmoLabel" / "list_patition_label.txt", "\n".join(lines).encode())
    return basic


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children (pool workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Clock:
    """Wall and CPU seconds since it was made, per item."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()

    def per(self, n: int) -> tuple[float, float]:
        return (time.perf_counter() - self.wall) / n, (cpu_seconds() - self.cpu) / n


def stage_times(basic: Path, batch_size: int, device: torch.device, scratch: Path) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per image of each stage alone, in one process; degrade's wall time is at
    its best thread count, its CPU time at one thread (``degrade_1thread``: both at one thread)."""
    ds = ADAPTERS.get("rafdb")(basic)
    records = ds.records()
    n = len(records)
    preset = load_preset("paper")
    clock = Clock()
    images = [decode_image((ds.root / r.relpath).read_bytes()) for r in records]
    decode = clock.per(n)
    clock = Clock()
    params = [preset.sample(0, f"rafdb/{r.relpath}") for r in records]
    sample = clock.per(n)
    x_all = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    degrade_batch_uint8(x_all[:2].to(device), params[:2], preset=preset)  # warm-up
    threads = torch.get_num_threads()
    per_threads = {}
    for n_threads in range(1, threads + 1):
        torch.set_num_threads(n_threads)
        clock = Clock()
        outs = []
        for i in range(0, n, batch_size):
            y = degrade_batch_uint8(x_all[i:i + batch_size].to(device), params[i:i + batch_size], preset=preset)
            outs.append(y.cpu().numpy().transpose(0, 2, 3, 1))
        per_threads[n_threads] = clock.per(n)
    torch.set_num_threads(threads)
    degrade = (min(wall for wall, _ in per_threads.values()), per_threads[1][1])
    lows = [img for batch in outs for img in batch]
    clock = Clock()
    for k, img in enumerate(lows):
        atomic_write_bytes(scratch / f"{k}.jpg", encode_image(np.ascontiguousarray(img), "jpg", jpeg_quality=95))
    encode = clock.per(n)
    return {"decode": decode, "degrade": degrade, "encode": encode, "sample": sample,
            "degrade_1thread": per_threads[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--repeat", type=int, default=2, help="end-to-end runs per --workers value (best is kept)")
    args = ap.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        basic = make_source(tmp / "src", args.n)
        (tmp / "scratch").mkdir()
        load_before = _load()
        stages = stage_times(basic, args.batch_size, device, tmp / "scratch")
        sample = stages.pop("sample")  # parameter sampling: part of the pipeline, not of the three stages
        degrade_1 = stages.pop("degrade_1thread")
        stage_sum = sum(wall for wall, _ in stages.values())
        sum_rate = 1.0 / stage_sum
        best: dict[int, tuple[float, float]] = {}  # workers -> (wall, CPU) per image of the fastest run
        for _ in range(args.repeat):  # interleaved, so a load change hits every setting alike
            for w in args.workers:
                out = tmp / f"out_w{w}"
                clock = Clock()
                summary = build_lowlight(ADAPTERS.get("rafdb")(basic), out, device=str(device), workers=w,
                                         batch_size=args.batch_size)
                run = clock.per(args.n)
                assert summary.ok == args.n, summary.format()
                best[w] = min(best.get(w, run), run)
                shutil.rmtree(out)
        print(f"device {device}, {args.n} images 100x100, batch {args.batch_size}, torch threads "
              f"{torch.get_num_threads()}, {os.cpu_count()} CPUs; load average before {load_before}, "
              f"after {_load()}")
        print(f"  {'':44s} {'wall ms/img':>11s} {'img/s':>7s} {'CPU ms/img':>10s}")

        def line(name: str, wall: float, cpu: float, note: str = "") -> None:
            print(f"  {name:44s} {wall * 1e3:11.3f} {1 / wall:7.0f} {cpu * 1e3:10.3f}  {note}")

        for name, (wall, cpu) in stages.items():
            line(f"stage {name}", wall, cpu, "(best thread count)" if name == "degrade" else "")
        line("sum of stages", stage_sum, sum(cpu for _, cpu in stages.values()), "(CPU: degrade at 1 thread)")
        line("  degrade at 1 thread", *degrade_1)
        line("  parameter sampling (in the pipeline, not the sum)", *sample)
        for w in args.workers:
            where = {0: "in-process, torch threads", 1: "in-process, 1 thread"}.get(w, f"{w} worker processes")
            line(f"end-to-end --workers {w} ({where})", *best[w], f"= {1 / best[w][0] / sum_rate:4.2f}x stage-sum rate")
        if 1 in best and 2 in best:
            print(f"  2 workers / 1 worker: {best[1][0] / best[2][0]:4.2f}x")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
