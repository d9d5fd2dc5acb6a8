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


def stage_times(basic: Path, batch_size: int, device: torch.device, scratch: Path) -> dict[str, float]:
    """Seconds per image of each stage alone (one process; degrade at its best thread count)."""
    ds = ADAPTERS.get("rafdb")(basic)
    records = ds.records()
    preset = load_preset("paper")
    t = time.perf_counter()
    images = [decode_image((ds.root / r.relpath).read_bytes()) for r in records]
    t_decode = (time.perf_counter() - t) / len(records)
    t = time.perf_counter()
    params = [preset.sample(0, f"rafdb/{r.relpath}") for r in records]
    t_sample = (time.perf_counter() - t) / len(records)
    x_all = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    degrade_batch_uint8(x_all[:2].to(device), params[:2], preset=preset)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    threads = torch.get_num_threads()
    per_threads = {}
    for n_threads in range(1, threads + 1):  # the best thread count is the stage's figure
        torch.set_num_threads(n_threads)
        t = time.perf_counter()
        outs = []
        for i in range(0, len(records), batch_size):
            y = degrade_batch_uint8(x_all[i:i + batch_size].to(device), params[i:i + batch_size], preset=preset)
            outs.append(y.cpu().numpy().transpose(0, 2, 3, 1))
        if device.type == "cuda":
            torch.cuda.synchronize()
        per_threads[n_threads] = (time.perf_counter() - t) / len(records)
    torch.set_num_threads(threads)
    t_degrade = min(per_threads.values())
    lows = [img for batch in outs for img in batch]
    t = time.perf_counter()
    for k, img in enumerate(lows):
        atomic_write_bytes(scratch / f"{k}.jpg", encode_image(np.ascontiguousarray(img), "jpg", jpeg_quality=95))
    t_encode = (time.perf_counter() - t) / len(records)
    return {"decode": t_decode, "degrade": t_degrade, "encode": t_encode, "sample": t_sample,
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
        stages = stage_times(basic, args.batch_size, device, tmp / "scratch")
        sample = stages.pop("sample")  # parameter sampling: part of the pipeline, not of the three stages
        degrade_1 = stages.pop("degrade_1thread")
        sum_rate = 1.0 / sum(stages.values())
        print(f"device {device}, {args.n} images 100x100, batch {args.batch_size}, "
              f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, load {_load()}")
        for name, sec in stages.items():
            print(f"  stage {name:8s} {sec * 1e3:7.2f} ms/img  ({1 / sec:8.0f} img/s alone)")
        print(f"  sum of stages     {sum(stages.values()) * 1e3:7.2f} ms/img  ({sum_rate:8.0f} img/s)")
        one_thread = stages["decode"] + degrade_1 + stages["encode"]
        print(f"  (degrade at 1 thread {degrade_1 * 1e3:.2f} ms/img: one-thread stage sum {one_thread * 1e3:.2f} "
              f"ms/img, {1 / one_thread:.0f} img/s; parameter sampling {sample * 1e3:.2f} ms/img is not "
              f"in the sums)")
        rates: dict[int, float] = {}
        for repeat in range(args.repeat):  # interleaved, so a load change hits every setting alike
            for w in args.workers:
                out = tmp / f"out_w{w}"
                t = time.perf_counter()
                summary = build_lowlight(ADAPTERS.get("rafdb")(basic), out, device=str(device), workers=w,
                                         batch_size=args.batch_size)
                dt = time.perf_counter() - t
                assert summary.ok == args.n, summary.format()
                rates[w] = max(rates.get(w, 0.0), args.n / dt)
                shutil.rmtree(out)
        for w in args.workers:
            where = {0: "in-process, torch threads", 1: "in-process, 1 thread"}.get(w, f"{w} worker processes")
            print(f"  end-to-end, --workers {w} ({where}): {args.n / rates[w]:6.2f} s  {rates[w]:8.0f} img/s  "
                  f"= {rates[w] / sum_rate:4.2f}x the sum-of-stages rate")
        if 1 in rates and 2 in rates:
            print(f"  2 workers / 1 worker: {rates[2] / rates[1]:4.2f}x   (load after: {_load()})")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
