"""Training throughput of every registered method, and the packed loader vs a plain PIL ImageFolder loader.

    python benchmarks/bench_training.py [--device auto] [--images 512] [--batch-size 16] [--steps 3]
                                        [--methods resnet18,scn] [--skip-methods] [--skip-loader]

Part 1 (methods): train images/s (forward + loss + backward + Adam step, batches from the packed
path with on-device augmentation) at 112×112 on the chosen device, each method in its final stage,
printed side by side with ResNet-18 as the unit.
Part 2 (loader): images/s of one training epoch's batches (decode/resize/flip/erase/normalise) from
(a) torchvision ImageFolder + PIL + DataLoader at 0 and N workers, and (b) the packed uint8 memmap
with Kornia/torch augmentation on the device. Goal: (b) ≥ 20× (a) on the CPU.
The dataset is generated in a temporary folder (JPEGs of 100×100 like RAF-DB's aligned faces).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lldif_bench.datasets import open_dataset
from lldif_bench.datasets.packed import pack_dataset
from lldif_bench.device import resolve_device
from lldif_bench.emotions import CANONICAL
from lldif_bench.imageio import write_image
from lldif_bench.training.batches import PackedBatches
from lldif_bench.training.config import AugmentConfig
from lldif_bench.training.distributed import DistContext

SIZE = 112


def make_dataset(root: Path, n_train: int, n_test: int = 56, src: int = 100, seed: int = 0) -> Path:
    """An ImageFolder of smooth random JPEGs (plus a landmarks.npz for landmark methods)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:src, 0:src] / src
    relpaths = []
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            k = i % len(CANONICAL)
            a, b, c = rng.uniform(0, 255, 3)
            img = np.stack([a * xx + b * (1 - yy), b * yy + c * (1 - xx), c * xx * yy + a * (1 - xx)], -1)
            img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
            rel = f"{split}/{CANONICAL[k]}/{i:05d}.jpg"
            write_image(root / rel, img, jpeg_quality=90)
            relpaths.append(rel)
    from lldif_bench.landmarks.fallback import canonical_shape_in_crop

    pts = np.repeat(canonical_shape_in_crop(src, src)[None], len(relpaths), 0).astype(np.float32)
    np.savez(root / "landmarks.npz", relpath=np.array(relpaths), points=pts,
             confidence=np.ones(len(relpaths), np.float32), status=np.array(["ground-truth"] * len(relpaths)))
    return root


# ------------------------------------------------------------------------------------------------
def bench_methods(packed, device: torch.device, names: list[str], batch_size: int, steps: int) -> list[tuple]:
    from lldif_bench.methods import load_all_methods
    from lldif_bench.training.engine import enter_stage, method_stages, trainable_groups

    registry = load_all_methods()
    ctx = DistContext(device=device)
    loader = PackedBatches(packed, "train", batch_size, ctx, train=True, augment=AugmentConfig(), prefetch=False)
    batches = [b for _, b in zip(range(steps + 1), loader.epoch(0))]
    rows = []
    for name in names:
        builder = registry.get(name)
        try:
            torch.manual_seed(0)
            model = builder(packed.num_classes, num_train=len(loader.rows), pretrained="scratch", image_size=SIZE)
            stages = method_stages(builder)
            for s in stages:
                enter_stage(model, s["name"])
            model.to(device).train()
            opt = torch.optim.Adam([p for g in trainable_groups(model, 1e-4) for p in g["params"]], lr=1e-4)
            timings = []
            for i, b in enumerate(batches):
                b.data["stage"] = stages[-1]["name"]
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    out = model(b.data)
                    loss, _ = model.loss(out, b.data)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i > 0:  # the first step warms up allocators and lazy init
                    timings.append(time.perf_counter() - t0)
            ips = batch_size / min(timings)  # best step: the least disturbed by other load (as timeit)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            rows.append((name, stages[-1]["name"], ips, params, ""))
        except Exception as err:  # noqa: BLE001  (a benchmark reports a broken method and goes on)
            rows.append((name, "", float("nan"), float("nan"), f"{type(err).__name__}: {err}"[:90]))
        print(f"  {rows[-1][0]:<10} {rows[-1][2]:8.1f} img/s {rows[-1][4]}", flush=True)
    return rows


# ------------------------------------------------------------------------------------------------
def bench_pil_loader(root: Path, batch_size: int, workers: int, max_batches: int) -> float:
    from torchvision import datasets, transforms

    tf = transforms.Compose([
        transforms.Resize((SIZE, SIZE)), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        transforms.RandomErasing(scale=(0.02, 0.25))])
    ds = datasets.ImageFolder(str(root / "train"), transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         persistent_workers=False)
    n, t0 = 0, time.perf_counter()
    for i, (x, _) in enumerate(loader):
        n += x.shape[0]
        if i + 1 >= max_batches:
            break
    return n / (time.perf_counter() - t0)


def bench_packed_loader(packed, device: torch.device, batch_size: int, epochs: int) -> float:
    loader = PackedBatches(packed, "train", batch_size, DistContext(device=device), train=True,
                           augment=AugmentConfig())
    n, t0 = 0, time.perf_counter()
    for e in range(epochs):
        for b in loader.epoch(e):
            n += b.local_n
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def bench_packed_host(packed, batch_size: int, epochs: int) -> float:
    """The host's share of the packed path: shuffled uint8 batches sliced from the memmap into tensors
    (what the CPU does per batch when the augmentation runs on an accelerator)."""
    loader = PackedBatches(packed, "train", batch_size, DistContext(), train=True)
    n, t0 = 0, time.perf_counter()
    for e in range(epochs):
        for _, local, _ in loader._plan(e, 0):
            n += torch.from_numpy(loader._read(local)["image"]).shape[0]
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--images", type=int, default=512, help="training images in the generated dataset")
    ap.add_argument("--batch-size", type=int, default=16, help="batch size of the method benchmark")
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per method (after 1 warm-up)")
    ap.add_argument("--methods", default="", help="comma-separated subset (default: every registered method)")
    ap.add_argument("--skip-methods", action="store_true")
    ap.add_argument("--skip-loader", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads for the method benchmark "
                    "(0: leave torch's default)")
    ap.add_argument("--loader-threads", type=int, default=1, help="torch threads during the loader comparison")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="DataLoader workers of the PIL run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        root = make_dataset(Path(tmp) / "bench", args.images)
        t0 = time.perf_counter()
        packed = pack_dataset(open_dataset(root), SIZE, workers=4, progress=False)
        pack_s = time.perf_counter() - t0
        print(f"packed {len(packed.labels)} images at {SIZE}px in {pack_s:.2f} s (once per dataset and size)")
        if not args.skip_methods:
            from lldif_bench.methods import load_all_methods

            names = [n for n in (args.methods.split(",") if args.methods else load_all_methods().names()) if n]
            print(f"\ntrain images/s at {SIZE}x{SIZE}, batch {args.batch_size}, best of {args.steps} timed steps:")
            rows = bench_methods(packed, device, names, args.batch_size, args.steps)
            unit = next((r[2] for r in rows if r[0] == "resnet18"), float("nan"))
            print("\n| method | stage | train img/s | × resnet18 | params (M) | note |\n|---|---|---:|---:|---:|---|")
            for name, stage, ips, params, note in rows:
                print(f"| {name} | {stage} | {ips:.1f} | {ips / unit:.2f} | {params:.2f} | {note} |")
        if not args.skip_loader:
            print(f"\nloader images/s ({args.images} train JPEGs 100x100 -> {SIZE}px, flip + erase + normalise, batch 64, "
                  f"{args.loader_threads} torch thread(s)):")
            # one intra-op thread, as DataLoader workers run: on a busy machine two threads per tiny
            # per-image tensor op oversubscribe the cores and make the 0-worker loader look ~40× slower
            torch.set_num_threads(args.loader_threads)
            pil0 = bench_pil_loader(root, 64, 0, max_batches=10**9)
            pilw = bench_pil_loader(root, 64, args.workers, max_batches=10**9) if args.workers > 0 else float("nan")
            pk = bench_packed_loader(packed, device, 64, epochs=3)
            host = bench_packed_host(packed, 64, epochs=10)
            print(f"| loader | img/s | ÷ PIL 0 workers | ÷ PIL {args.workers} workers |\n|---|---:|---:|---:|")
            for label, v in (("PIL ImageFolder, 0 workers", pil0), (f"PIL ImageFolder, {args.workers} workers", pilw),
                             (f"packed memmap + augmentation on {device.type}", pk),
                             ("packed memmap, host side only (uint8 batches; augmentation on the accelerator)", host)):
                print(f"| {label} | {v:.0f} | {v / pil0:.1f} | {v / pilw:.1f} |")


if __name__ == "__main__":
    main()
