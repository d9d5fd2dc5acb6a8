"""Stage-1 probe (issue 17): does LLDif's stage 1 learn to read the label from Z, and how fast?

Trains stage 1 alone (LA-CLIP left at init; it only supplies image tokens) on a dataset's train split
and prints, every 10 steps, the mean CE and train oracle accuracy of the last 10 steps and Z's
per-dimension spread and mean |Z| in the last batch. Overrides are LLDif config keys as JSON.

    # the printed reading (pure Eq. 2, raw text bank, no Z norm), `fast` preset:
    python benchmarks/probe_lldif_stage1.py --data demo/data/lowlight --preset fast \\
        --set '{"dtnet": {"mod": "pure", "z_norm": false}, "pnet_s1": {"center_text": false}}'
    # the defaults, `cpu` preset, gradients clipped at 1 (as configs/cpu.yaml):
    python benchmarks/probe_lldif_stage1.py --data demo/data/lowlight --preset cpu --clip 1
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=3.5e-4)
    ap.add_argument("--clip", type=float, default=0.0, help="gradient-norm clip (0: none)")
    ap.add_argument("--set", default="{}", help="LLDif config overrides as JSON")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from lldif_bench.datasets import open_dataset
    from lldif_bench.datasets.packed import pack_dataset
    from lldif_bench.device import flush_cpu_subnormals
    from lldif_bench.models.lldif import build
    from lldif_bench.training.batches import PackedBatches
    from lldif_bench.training.distributed import DistContext

    flush_cpu_subnormals()
    torch.manual_seed(0)
    packed = pack_dataset(open_dataset(args.data), args.size, workers=1, progress=False)
    model = build(packed.num_classes, num_train=1, pretrained=None, image_size=args.size,
                  **{"config": args.preset, **json.loads(args.set)})
    batches = PackedBatches(packed, "train", args.batch, DistContext(), train=True, seed=0)
    model.set_stage("1")
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=args.lr, weight_decay=1e-4)
    t0, step, ces, accs = time.perf_counter(), 0, [], []
    while step < args.steps:
        for b in batches.epoch(step, 1):
            out = model(b.data)
            loss, parts = model.loss(out, b.data)
            loss.backward()
            if args.clip:
                torch.nn.utils.clip_grad_norm_(params, args.clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            ces.append(parts["ce"])
            accs.append(parts["s1_oracle_acc"])
            step += 1
            if step % 10 == 0:
                z = out["z"].detach()
                print(f"step {step} ce {sum(ces[-10:]) / 10:.3f} oracle acc {sum(accs[-10:]) / 10:.3f} "
                      f"Z spread {z.std(0).mean():.4f} |Z| {z.abs().mean():.4f} {time.perf_counter() - t0:.0f}s",
                      flush=True)
            if step >= args.steps:
                break


if __name__ == "__main__":
    main()
