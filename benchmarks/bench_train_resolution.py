"""ResNet-18 training throughput (images/s: forward + cross-entropy + backward + Adam step) at a few
input sizes on the CPU, to choose the demo's training resolution for the synthetic set's fine cues.

    OMP_NUM_THREADS=1 python benchmarks/bench_train_resolution.py --sizes 48 64 80 --threads 1

Prints the best of ``--steps`` timed steps per size (after one warm-up; the best step is the least
disturbed by other load) and the ratio to the first size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.resnet18 import ResNet18CE


def images_per_second(size: int, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    model = ResNet18CE(7, "scratch").train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 7, (batch,))
    best = float("inf")
    for step in range(steps + 1):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model.embed(x)["logits"], y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step:
            best = min(best, time.perf_counter() - t0)
    return batch / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 80])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rates = {s: images_per_second(s, args.batch_size, args.steps) for s in args.sizes}
    first = rates[args.sizes[0]]
    for s, r in rates.items():
        print(f"{s:>4} px  {r:7.1f} img/s  {r / first:5.2f}x of {args.sizes[0]} px", flush=True)


if __name__ == "__main__":
    main()
