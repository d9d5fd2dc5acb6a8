"""make-dataset throughput at 100x100: end-to-end vs the sum of its stages, and 2 workers vs 1.

Builds a RAF-DB-layout source of N random-ish 100x100 JPEGs, then in the same run measures
1. each stage alone, in this process: decode (read + decode), degrade (device batches), encode
   (encode + atomic write); the "sum-of-stages" rate is 1 / (t_decode + t_degrade + t_encode) per image;
2. ``build_lowlight`` end to end (planning, pipeline, manifest, card) with 1 and with 2 workers.

Goals (issue 8): end-to-end >= 0.7x the sum-of-stages rate; 2 workers >= 1.5x 1 worker (CPU).

    python benchmarks/bench_make_dataset.py [--n 256] [--batch-size 64] [--device auto] [--workers 1 2]
"""

from __future__ import annotations

import argparse
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
    t_degrade = float("inf")
    for n_threads in range(1, threads + 1):  # the best thread count (the build picks its own)
        torch.set_num_threads(n_threads)
        t = time.perf_counter()
        outs = []
        for i in range(0, len(records), batch_size):
            y = degrade_batch_uint8(x_all[i:i + batch_size].to(device), params[i:i + batch_size], preset=preset)
            outs.append(y.cpu().numpy().transpose(0, 2, 3, 1))
        t_degrade = min(t_degrade, (time.perf_counter() - t) / len(records))
    torch.set_num_threads(threads)
    lows = [img for batch in outs for img in batch]
    t = time.perf_counter()
    for k, img in enumerate(lows):
        atomic_write_bytes(scratch / f"{k}.jpg", encode_image(np.ascontiguousarray(img), "jpg", jpeg_quality=95))
    t_encode = (time.perf_counter() - t) / len(records)
    return {"decode": t_decode, "degrade": t_degrade, "encode": t_encode, "sample": t_sample}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        basic = make_source(tmp / "src", args.n)
        (tmp / "scratch").mkdir()
        stages = stage_times(basic, args.batch_size, device, tmp / "scratch")
        sample = stages.pop("sample")  # parameter sampling: part of the pipeline, not of the three stages
        sum_rate = 1.0 / sum(stages.values())
        print(f"device {device}, {args.n} images 100x100, batch {args.batch_size}, "
              f"torch threads {torch.get_num_threads()}")
        for name, sec in stages.items():
            print(f"  stage {name:8s} {sec * 1e3:7.2f} ms/img  ({1 / sec:8.0f} img/s alone)")
        print(f"  sum of stages     {sum(stages.values()) * 1e3:7.2f} ms/img  ({sum_rate:8.0f} img/s)")
        print(f"  (not in the sum: parameter sampling {sample * 1e3:.2f} ms/img, done in the decode workers)")
        rates = {}
        for w in args.workers:
            out = tmp / f"out_w{w}"
            t = time.perf_counter()
            summary = build_lowlight(ADAPTERS.get("rafdb")(basic), out, device=str(device), workers=w,
                                     batch_size=args.batch_size)
            dt = time.perf_counter() - t
            assert summary.ok == args.n, summary.format()
            rates[w] = args.n / dt
            print(f"  end-to-end, {w} worker(s): {dt:6.2f} s  {rates[w]:8.0f} img/s  "
                  f"= {rates[w] / sum_rate:4.2f}x the sum-of-stages rate")
            shutil.rmtree(out)
        if 1 in rates and 2 in rates:
            print(f"  2 workers / 1 worker: {rates[2] / rates[1]:4.2f}x")


if __name__ == "__main__":
    main()
