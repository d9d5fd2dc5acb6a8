"""LLDif cost benchmark (issues 4 and 17): parameters, training cost vs ResNet-18, inference vs T.

Prints, for each chosen config (default ``cpu``) at ``--size`` (default 56, the demo's size) on the
chosen device:

1. parameter counts (whole training model; deployed label-free model; ResNet-18 with a 7-way head);
2. training wall time per image of a step of every stage (0: LA-CLIP; 1: teacher + LLformer; 2a:
   frozen teacher + chain; 2b: frozen teacher, chain, LLformer) ÷ ResNet-18's forward+backward at the
   same size and batch, timed side by side (the steps alternate, medians are compared, so a change
   of load hits both; goal: ≤ 3× for every stage); or with ``--flops`` counted GFLOP per image with a
   per-part breakdown of stage 2b (load-independent);
3. peak memory of ResNet-18's and each config's stage-1 and stage-2b training steps, each measured
   in a fresh process (CPU: peak RSS; CUDA: peak allocated);
4. label-free inference cost at T = 1, 2, 4, 8, 50 relative to the stage-1 forward (LA-CLIP +
   PNET_s1 + LLformer, no grad) and to the LLformer alone (goal: T = 4 ≤ 1.3× the stage-1 forward).

    python benchmarks/bench_lldif.py                                  # cpu preset at 56 px, batch 64
    python benchmarks/bench_lldif.py --config base,fast --size 112 --batch 8 --iters 3
    python benchmarks/bench_lldif.py --config base,fast --size 112 --flops --batch 2
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
import torchvision

from lldif_bench.device import flush_cpu_subnormals, resolve_device
from lldif_bench.models.lldif import build
from lldif_bench.models.lldif.diffusion import EPDDiffusion
from lldif_bench.models.lldif.model import STAGES

K = 7


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: dict, device, iters: int, warmup: int = 1) -> dict:
    """Median seconds per call of each function, the calls alternating (side by side under one load)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict = {k: [] for k in fns}
    for _ in range(iters):
        for key, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[key].append(time.perf_counter() - t0)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


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


TRAINING_PARTS = ("laclip", "pnet_s1", "student.pnet_s2", "student.denoiser", "student.llformer.dtnet",
                  "student.llformer.landmark_trunk", "student.llformer.dlnet", "student.llformer.fusion")


def stage2b_breakdown(model, batch: dict) -> dict:
    """Forward GFLOP per image of one stage-2b training step, per part, and the training estimate.

    The teacher (LA-CLIP + PNET_s1) runs frozen under ``no_grad``, so it costs one forward; the
    student (PNET_s2, denoiser, LLformer) costs forward + backward ≈ 3 × forward.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model.set_stage("2b")
    model.train()
    b = batch["image"].shape[0]
    with FlopCounterMode(display=False, depth=5) as counter:
        outputs = model(batch)
        model.loss(outputs, batch)
    counts = {name: sum(ops.values()) / b / 1e9 for name, ops in counter.get_flop_counts().items()}
    parts = {name: round(counts.get(f"LLDif.{name}", 0.0), 4) for name in TRAINING_PARTS}
    teacher = counts.get("LLDif.laclip", 0.0) + counts.get("LLDif.pnet_s1", 0.0)
    # the student module is never called as a whole in training (its parts are), so sum its parts
    student = sum(counts.get(f"LLDif.student.{part}", 0.0) for part in ("pnet_s2", "denoiser", "llformer"))
    return {"forward_gflop_per_image": parts, "teacher_forward": round(teacher, 4),
            "student_forward": round(student, 4), "other_forward": round(counts["Global"] - teacher - student, 4),
            "train_gflop_per_image": round(counts["Global"] + 2 * student, 4)}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_lldif(name: str, size: int, device):
    return build(K, num_train=1, pretrained=None, config=name, image_size=size,
                 text={"kind": "hash", "dim": 384}).to(device)


def make_batch(size: int, b: int, device) -> dict:
    torch.manual_seed(0)
    return {"image": torch.randn(b, 3, size, size, device=device), "label": torch.randint(0, K, (b,), device=device),
            "landmarks": torch.rand(b, 68, 2, device=device) * size, "index": torch.arange(b, device=device),
            "epoch": 0}


def lldif_step(model, batch: dict, amp):
    def step():
        with amp:
            loss, _ = model.loss(model(batch), batch)
        loss.backward()
        model.zero_grad(set_to_none=True)
    return step


def resnet_step(resnet, batch: dict, amp):
    def step():
        with amp:
            loss = F.cross_entropy(resnet(batch["image"]), batch["label"])
        loss.backward()
        resnet.zero_grad(set_to_none=True)
    return step


def _peak_worker(kind: str, stage: str, size: int, b: int, device_name: str, steps: int, queue) -> None:
    """In a fresh process: a few training steps of ResNet-18 or one LLDif stage; report peak memory."""
    import resource

    torch.set_num_threads(1)
    flush_cpu_subnormals()
    device = torch.device(device_name)
    batch = make_batch(size, b, device)
    amp = torch.autocast("cpu", enabled=False)
    if kind == "resnet18":
        step = resnet_step(torchvision.models.resnet18(weights=None, num_classes=K).to(device).train(), batch, amp)
    else:
        model = build_lldif(kind, size, device)
        model.set_stage(stage)
        model.train()
        step = lldif_step(model, batch, amp)
    for _ in range(steps):
        step()
    if device.type == "cuda":
        queue.put(torch.cuda.max_memory_allocated(device) / 2**30)
    else:
        queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)  # KiB -> GiB


def peak_memory_gib(kind: str, stage: str, size: int, b: int, device, steps: int = 2) -> float:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_worker, args=(kind, stage, size, b, str(device), steps, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return round(float(value), 3)


def bench_config(name: str, args, device, batch: dict, resnet_cost, amp, resnet=None) -> dict:
    """Every figure of one LLDif config (see the module docstring); ``resnet_cost`` is ResNet-18's
    training GFLOP (``--flops``); when timing, ResNet-18's steps are timed here beside LLDif's."""
    x, lm = batch["image"], batch["landmarks"]
    b = x.shape[0]
    model = build_lldif(name, x.shape[-1], device)
    out: dict = {"params_total": count(model), "params_label_free": count(model.student)}

    if args.flops:  # forward counted per part; training = teacher fwd + 3 x student fwd
        out["stage2b"] = stage2b_breakdown(model, batch)
        model.set_stage("1")
        model.train()
        s1_fwd = counted_flops(lambda: model.loss(model(batch), batch)) / b / 1e9
        teacher = out["stage2b"]["teacher_forward"]
        out["train_gflop_per_image_stage1"] = round(teacher + 3 * (s1_fwd - teacher), 4)
        cost = {"1": out["train_gflop_per_image_stage1"], "2b": out["stage2b"]["train_gflop_per_image"]}
    else:  # measured forward + backward seconds per batch, each stage alternating with ResNet-18
        cost = {}
        step = lldif_step(model, batch, amp)
        ratios = []
        for stage in STAGES:
            model.set_stage(stage)
            model.train()
            t = interleaved({"resnet18": resnet_step(resnet, batch, amp), "lldif": step}, device, args.iters)
            cost[stage] = t["lldif"]
            out[f"train_img_s_stage{stage}"] = round(b / t["lldif"], 2)
            out[f"train_img_s_resnet18_beside_stage{stage}"] = round(b / t["resnet18"], 2)
            out[f"train_time_ratio_stage{stage}_vs_resnet18"] = round(t["lldif"] / t["resnet18"], 3)
            ratios.append(t["lldif"] / t["resnet18"])
        out["train_time_ratio_worst_stage_vs_resnet18"] = round(max(ratios), 3)
    if args.flops:
        for stage in ("1", "2b"):
            out[f"train_cost_ratio_stage{stage}_vs_resnet18"] = round(cost[stage] / resnet_cost, 3)
    if args.memory:
        out["peak_memory_gib"] = {f"stage{stage}": peak_memory_gib(name, stage, x.shape[-1], b, device)
                                  for stage in ("1", "2b")}

    measure = (lambda fn: counted_flops(fn) / b) if args.flops else (lambda fn: timed(fn, device, args.iters))
    key, scale = ("gflop_per_image", 1e-9) if args.flops else ("ms_per_batch", 1e3)
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
        out[f"stage1_forward_{key}"] = scale * t_s1
        out[f"llformer_forward_{key}"] = scale * t_llf
        infer = {}
        d = model.cfg.diffusion
        for steps in (int(s) for s in args.steps.split(",")):
            model.student.diffusion = EPDDiffusion(steps, d.linear_start, d.linear_end, d.schedule,
                                                   d.parameterization).to(device)

            def infer_fn():
                with amp:
                    model.student(x, lm)

            t = measure(infer_fn)
            infer[steps] = {key: scale * t, "vs_stage1_forward": t / t_s1, "vs_llformer": t / t_llf}
        out["inference"] = infer
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="cpu", help="LLDif presets to measure, comma-separated")
    ap.add_argument("--size", type=int, default=56, help="input side for LLDif and ResNet-18 (multiple of 56)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--steps", default="1,2,4,8,50", help="T values for the inference study")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: as the runs on the shared CPU)")
    ap.add_argument("--no-memory", dest="memory", action="store_false",
                    help="skip the peak-memory processes")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--flops", action="store_true",
                    help="count FLOPs per image (FlopCounterMode) instead of timing: robust on a busy machine")
    args = ap.parse_args()
    flush_cpu_subnormals()  # as `lldif-bench run` does
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    size, b = args.size, args.batch
    batch = make_batch(size, b, device)
    x, y = batch["image"], batch["label"]
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if args.amp and device.type == "cuda" else torch.autocast(
        "cpu", enabled=False)
    resnet = torchvision.models.resnet18(weights=None, num_classes=K).to(device).train()

    out: dict = {"device": str(device), "batch": b, "image_size": size, "torch": torch.__version__,
                 "threads": torch.get_num_threads(), "params_resnet18": count(resnet)}
    # FlopCounterMode counts depthwise-conv backward as if the conv were dense (its grad-weight
    # formula ignores groups), which inflates DTNet's backward ~20x. So --flops counts forwards and
    # takes backward = 2 x forward for every part that trains (ResNet-18: training = 3 x forward).
    if args.flops:
        out["unit"] = "GFLOP per image (training = frozen-teacher forward + 3 x trained-part forward)"
        resnet_cost = 3 * counted_flops(lambda: F.cross_entropy(resnet(x), y)) / b / 1e9
        out["train_gflop_per_image_resnet18"] = round(resnet_cost, 4)
    else:
        out["unit"] = ("measured forward+backward images/s, ResNet-18 timed beside each LLDif stage; "
                       "inference ms per batch; peak memory GiB (CPU: process RSS)")
        resnet_cost = None
    if args.memory:
        out["peak_memory_gib_resnet18"] = peak_memory_gib("resnet18", "", size, b, device)
    for name in args.config.split(","):
        out[name] = bench_config(name, args, device, batch, resnet_cost, amp, resnet)
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
