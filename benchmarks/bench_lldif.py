"""LLDif cost benchmark (issue 4 item 6): parameters, training throughput vs ResNet-18, inference vs T.

Prints, for the chosen config at 112×112 on the chosen device:

1. parameter counts (whole training model; deployed label-free model; ResNet-18 with a 7-way head);
2. forward+backward images/s of an LLDif stage-2b training step (teacher, chain, LLformer) and of a
   stage-1 step, against ResNet-18 + CE, and the cost ratios (goal: ≤ 3× ResNet-18 per image);
3. label-free inference time at T = 1, 2, 4, 8, 50 relative to the stage-1 forward (LA-CLIP +
   PNET_s1 + LLformer, no grad) and to the LLformer alone (goal: T = 4 ≤ 1.3× the stage-1 forward).

    python benchmarks/bench_lldif.py --config base --device auto --batch 32 --iters 5
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
import torchvision

from lldif_bench.device import resolve_device
from lldif_bench.models.lldif import build

K = 7


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, iters: int, warmup: int = 1) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def counted_flops(fn) -> int:
    """FLOPs of one call, counted by PyTorch's FlopCounterMode (matmul/conv/attention; load-independent)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="base")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--steps", default="1,2,4,8,50", help="T values for the inference study")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--flops", action="store_true",
                    help="count FLOPs per image (FlopCounterMode) instead of timing: robust on a busy machine")
    args = ap.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    size, b = 112, args.batch
    x = torch.randn(b, 3, size, size, device=device)
    y = torch.randint(0, K, (b,), device=device)
    lm = torch.rand(b, 68, 2, device=device) * size
    batch = {"image": x, "label": y, "landmarks": lm, "index": torch.arange(b, device=device), "epoch": 0}
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if args.amp and device.type == "cuda" else torch.autocast(
        "cpu", enabled=False)

    model = build(K, num_train=1, pretrained=None, config=args.config, text={"kind": "hash", "dim": 384}).to(device)
    resnet = torchvision.models.resnet18(weights=None, num_classes=K).to(device)
    out: dict = {"config": args.config, "device": str(device), "batch": b, "image_size": size,
                 "torch": torch.__version__, "threads": torch.get_num_threads()}
    out["params_total"] = count(model)
    out["params_label_free"] = count(model.student)
    out["params_resnet18"] = count(resnet)

    # FlopCounterMode counts depthwise-conv backward as if the conv were dense (its grad-weight
    # formula ignores groups), which inflates DTNet's backward ~20x. So --flops counts the training
    # forward and reports training cost as 3x that (backward ~ 2x forward), for both models alike.
    backward = not args.flops

    def step_resnet():
        with amp:
            loss = F.cross_entropy(resnet(x), y)
        if backward:
            loss.backward()
            resnet.zero_grad(set_to_none=True)

    def step_lldif(stage):
        def run():
            with amp:
                outputs = model(batch)
                loss, _ = model.loss(outputs, batch)
            if backward:
                loss.backward()
                model.zero_grad(set_to_none=True)
        return run

    if args.flops:
        measure = lambda fn: counted_flops(fn) / b  # FLOPs per image (forward)
    else:
        measure = lambda fn: timed(fn, device, args.iters)  # seconds per batch
    out["unit"] = ("FLOPs per image; training = 3 x counted training forward" if args.flops
                   else "seconds per batch")
    resnet.train()
    t_res = measure(step_resnet)
    timings = {}
    for stage in ("1", "2b"):
        model.set_stage(stage)
        model.train()
        timings[stage] = measure(step_lldif(stage))
    if args.flops:  # training ≈ 3 × the training forward (see the note above step_resnet)
        t_res, timings = 3 * t_res, {k: 3 * v for k, v in timings.items()}
        out["train_gflop_per_image_resnet18"] = t_res / 1e9
        out["train_gflop_per_image_stage1"] = timings["1"] / 1e9
        out["train_gflop_per_image_stage2b"] = timings["2b"] / 1e9
    else:
        out["train_img_s_resnet18"] = b / t_res
        out["train_img_s_stage1"] = b / timings["1"]
        out["train_img_s_stage2b"] = b / timings["2b"]
    out["train_cost_ratio_stage2b_vs_resnet18"] = timings["2b"] / t_res
    out["train_cost_ratio_stage1_vs_resnet18"] = timings["1"] / t_res

    model.eval()
    with torch.no_grad():
        model.set_stage("1")
        model.eval()

        def stage1_forward():
            with amp:
                model(batch)

        t_s1 = measure(stage1_forward)
        z = torch.randn(b, model.cfg.epd_dim, device=device)

        def llformer_only():
            with amp:
                model.student.llformer(x, z, lm)

        t_llf = measure(llformer_only)
        key = "gflop_per_image" if args.flops else "ms_per_batch"
        scale = 1e-9 if args.flops else 1e3
        out[f"stage1_forward_{key}"] = scale * t_s1
        out[f"llformer_forward_{key}"] = scale * t_llf
        infer = {}
        cfg = model.cfg
        for steps in (int(s) for s in args.steps.split(",")):
            d = cfg.diffusion
            from lldif_bench.models.lldif.diffusion import EPDDiffusion

            model.student.diffusion = EPDDiffusion(steps, d.linear_start, d.linear_end, d.schedule,
                                                   d.parameterization).to(device)

            def infer_fn():
                with amp:
                    model.student(x, lm)

            t = measure(infer_fn)
            infer[steps] = {key: scale * t, "vs_stage1_forward": t / t_s1, "vs_llformer": t / t_llf}
        out["inference"] = infer
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
