"""The training loop: every method trained and evaluated the same way, resumable, stage-aware, DDP.

A method knows nothing about the loop, and the loop nothing about the method beyond the contract
in :mod:`lldif_bench.methods`, plus these optional seams for multi-stage methods such as LLDif:

- ``builder.STAGES``: a sequence of stage names, or of mappings ``{"name": …, "epochs": …, "lr": …,
  "optimizer": …, "scheduler": …, …}`` (keys of :data:`~lldif_bench.training.config.STAGE_KEYS`);
  the config's ``stages: {name: {…}}`` overrides them per stage.
- ``method.set_stage(name)``: called on entering each stage, in order (and replayed in order when a
  later stage, a resume or ``predict`` rebuilds the model), to freeze/unfreeze parts or add modules.
- ``method.param_groups(lr)``: the optimiser groups of the current stage (default: every parameter
  with ``requires_grad``).
- ``method.diagnostics(batches)``: called after each evaluation with the test split's batch dicts;
  returns a flat ``{name: float}`` (LLDif: the EPD figures) that goes into that epoch's metrics.csv
  row, and the last one of each stage into ``results.json`` under ``diagnostics`` (rank-local
  figures under DDP).

Each stage is trained for its own epochs with its own optimiser and schedule and is checkpointed in
``checkpoints/<stage>/`` (a single-stage method uses ``checkpoints/`` itself); ``--stage`` runs one
stage, which needs the previous stage finished. Stage k starts from stage k-1's last weights.
The final stage's evaluation makes ``results.json``, ``predictions.csv`` and the leaderboard row.

EMA (``ema_decay``, a stage key; off by default): an average of the stage's trained parameters is
updated after every step (:mod:`lldif_bench.training.ema`); evaluation, ``last``/``best`` weights
(hence ``predict`` and the next stage's start) use it, while ``state.pt`` keeps the average and
the raw trained values so a resume continues exactly.

Randomness: model init from ``seed``; every epoch reseeds torch/numpy/random from
(seed, stage, epoch, rank) and batch order/augmentation from (seed, stage, epoch, step), so a resumed
run replays exactly what an uninterrupted one computes without carrying RNG state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from tqdm import tqdm

from lldif_bench import __version__
from lldif_bench.device import flush_cpu_subnormals
from lldif_bench.errors import UserError
from lldif_bench.imageio import atomic_write_bytes
from lldif_bench.landmarks.cache import LANDMARKS_FILE, describe_landmark_file
from lldif_bench.synthetic.writer import CARD_FILE as SYNTHETIC_CARD
from lldif_bench.training import checkpoint as ckpt
from lldif_bench.training.batches import PackedBatches, derive_seed
from lldif_bench.training.config import RunConfig
from lldif_bench.training.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    gather_objects,
    init_from_env,
    shutdown,
)
from lldif_bench.training.ema import ParamEMA
from lldif_bench.training.leaderboard import append_row
from lldif_bench.training.metrics import classification_metrics
from lldif_bench.training.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

SINGLE_STAGE = "main"
# Config keys a resumed run may change (they do not change what is computed).
RESUME_FREE_KEYS = frozenset({"device", "workers", "resume", "epochs", "out", "command_line", "overwrite",
                              "compile", "progress", "cache_dir", "leaderboard", "stage", "name",
                              "user_set"})


# ----------------------------------------------------------------------------------------------------
# Stages
# ----------------------------------------------------------------------------------------------------
def method_stages(builder: Any) -> list[dict[str, Any]]:
    """The stage specs a method declares (``[{"name": "main"}]`` for a single-stage method)."""
    raw = getattr(builder, "STAGES", None)
    if not raw:
        return [{"name": SINGLE_STAGE}]
    stages = []
    for item in raw:
        if isinstance(item, str):
            stages.append({"name": item})
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            stages.append(dict(item))
        else:
            raise UserError(f"method STAGES entries must be names or mappings with a 'name', got {item!r}")
    names = [s["name"] for s in stages]
    if len(set(names)) != len(names):
        raise UserError(f"method STAGES has duplicate names: {names}")
    return stages


def select_stages(stages: list[dict], stage: str | None) -> list[int]:
    """Indices of the stages to run: all; the one named by ``stage``; the stages whose names start
    with it (LLDif's ``2`` = ``2a`` then ``2b``); or the one numbered ``stage`` from 0."""
    if stage is None:
        return list(range(len(stages)))
    names = [s["name"] for s in stages]
    if stage in names:
        return [names.index(stage)]
    prefixed = [k for k, name in enumerate(names) if name.startswith(str(stage))]
    if prefixed:
        return prefixed
    if re.fullmatch(r"\d+", str(stage)) and int(stage) < len(stages):
        return [int(stage)]
    raise UserError(f"--stage {stage!r}: this method's stages are {', '.join(names)} (or 0..{len(names) - 1})")


def stage_dir(run_dir: Path, stages: list[dict], k: int) -> Path:
    return run_dir / "checkpoints" if len(stages) == 1 else run_dir / "checkpoints" / stages[k]["name"]


def enter_stage(model: nn.Module, name: str) -> None:
    if hasattr(model, "set_stage"):
        model.set_stage(name)


def prepare_for_stage(model: nn.Module, stages: list[dict], k: int, run_dir: Path) -> None:
    """Bring a freshly built model to the start of stage ``k`` (replaying earlier stages' hooks)."""
    for j in range(k):
        enter_stage(model, stages[j]["name"])
    if k > 0:
        prev = stage_dir(run_dir, stages, k - 1)
        state = prev / ckpt.STATE
        if not state.is_file() or not ckpt.load_state(state).get("complete"):
            raise UserError(f"stage {stages[k]['name']!r} starts from stage {stages[k - 1]['name']!r}, which "
                            f"has not finished in {run_dir}; run it first (--stage {stages[k - 1]['name']})")
        ckpt.load_weights(model, prev / ckpt.LAST)
    enter_stage(model, stages[k]["name"])


# ----------------------------------------------------------------------------------------------------
# Dataset naming
# ----------------------------------------------------------------------------------------------------
def describe_data(data: str | Path) -> tuple[str, str]:
    """``(dataset name, condition)``: condition is ``low-light`` for a make-dataset copy (its
    ``dataset.json`` names a preset) or a ``lowlight`` folder, else ``clear``. The suite's synthetic
    data (a ``synthetic.json`` in the folder, or in the folder a low-light copy was made from) is
    named ``synthetic`` whatever its folder is called (the demo writes ``OUT/data/clear``), so reports
    file its runs under the synthetic rows."""
    path = Path(data).resolve()
    condition = "clear"
    card = path / "dataset.json"
    meta = {}
    if card.is_file():
        try:
            meta = json.loads(card.read_text())
        except json.JSONDecodeError:
            meta = {}
        if meta.get("preset") or meta.get("lowlight"):
            condition = "low-light"
    elif path.name == "lowlight":
        condition = "low-light"
    source = Path(str(meta.get("source") or path))
    if (path / SYNTHETIC_CARD).is_file() or (source / SYNTHETIC_CARD).is_file():
        return "synthetic", condition
    name = path.parent.name if path.name in ("clear", "lowlight") else path.name
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name) or "dataset", condition


# ----------------------------------------------------------------------------------------------------
# Model building
# ----------------------------------------------------------------------------------------------------
def build_method(cfg: RunConfig, num_classes: int, num_train: int) -> nn.Module:
    """Build ``cfg.method`` with the seed set, as every rank and ``predict`` do identically."""
    from lldif_bench.methods import load_all_methods

    builder = load_all_methods().get(cfg.method)
    torch.manual_seed(cfg.seed)
    options = {"image_size": cfg.image_size, **cfg.method_options}  # methods that size layers by input read it
    model = builder(num_classes, num_train=num_train, pretrained=cfg.pretrained, **options)
    if not isinstance(model, nn.Module):
        raise UserError(f"method {cfg.method!r} built a {type(model).__name__}, not an nn.Module")
    return model


def count_params(model: nn.Module) -> int:
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def trainable_groups(model: nn.Module, lr: float) -> list[dict]:
    if hasattr(model, "param_groups") and callable(model.param_groups):
        groups = [g for g in model.param_groups(lr) if list(g["params"])]
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    if not any(list(g["params"]) for g in groups):
        raise UserError("the method has no trainable parameters in this stage")
    return groups


def autocast(cfg: RunConfig, device: torch.device):
    if cfg.amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def reseed(seed: int, stage: int, epoch: int, rank: int) -> None:
    s = derive_seed(seed, stage, epoch, rank, 0xE90C)
    torch.manual_seed(s)
    np.random.seed(s % (2**32))
    random.seed(s)


# ----------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------
@torch.no_grad()
def predict_split(model: nn.Module, batches: PackedBatches, cfg: RunConfig, ctx: DistContext
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, probabilities)`` of the whole split, gathered from every rank (method.predict only)."""
    was_training = model.training
    model.eval()
    rows, probs = [], []
    for b in batches.epoch(0):
        with autocast(cfg, ctx.device):
            logits = model.predict(b.data["image"], b.data.get("landmarks"))
        probs.append(F.softmax(logits.float(), dim=1).cpu().numpy())
        rows.append(b.data["row"])
    model.train(was_training)
    k = batches.packed.num_classes
    local = (np.concatenate(rows) if rows else np.zeros(0, np.int64),
             np.concatenate(probs) if probs else np.zeros((0, k), np.float32))
    parts = gather_objects(ctx, local)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def evaluate(model, batches, cfg, ctx) -> tuple[dict, np.ndarray, np.ndarray]:
    rows, probs = predict_split(model, batches, cfg, ctx)
    labels = batches.packed.labels[rows]
    return classification_metrics(labels, probs, batches.packed.class_names), rows, probs


def _sync_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's buffers (BatchNorm running stats) before evaluating."""
    if ctx.distributed:
        import torch.distributed as dist

        for buf in model.buffers():
            dist.broadcast(buf, 0)


# ----------------------------------------------------------------------------------------------------
# One stage
# ----------------------------------------------------------------------------------------------------
@dataclass
class StageOutcome:
    history: list[dict]
    final: dict | None       # metrics of the last epoch's evaluation
    best: dict | None        # {"epoch": e, "metrics": {...}}
    trained_epochs: int = 0  # epochs trained in this call (0 when the stage had already finished)
    diagnostics: dict | None = None  # the method's last diagnostics() of the stage, if it has the seam


def train_stage(model: nn.Module, cfg: RunConfig, stages: list[dict], k: int, run_dir: Path,
                train: PackedBatches, test: PackedBatches, ctx: DistContext) -> StageOutcome:
    """Train stage ``k`` for ``cfg.epochs`` epochs (resuming from its state when ``cfg.resume``)."""
    name = stages[k]["name"]
    out_dir = stage_dir(run_dir, stages, k)
    groups = trainable_groups(model, cfg.lr)
    optimizer = build_optimizer(cfg.optimizer, groups, cfg.lr, cfg.weight_decay, cfg.optimizer_params)
    scheduler = build_scheduler(cfg.scheduler, optimizer, cfg.epochs, cfg.scheduler_params)
    start, history, best, final, diag = 0, [], None, None, None
    ema = ParamEMA(model, cfg.ema_decay) if cfg.ema_decay else None
    state_file = out_dir / ckpt.STATE
    if cfg.resume and state_file.is_file():
        state = ckpt.load_state(state_file)
        weights_epoch = _weights_epoch(out_dir / ckpt.LAST)
        if weights_epoch != state["epoch"]:
            raise UserError(f"{out_dir}: the weights are of epoch {weights_epoch} but the training state of epoch "
                            f"{state['epoch']} (the run was killed while writing them); restart with --overwrite")
        ckpt.load_weights(model, out_dir / ckpt.LAST)
        if ema is not None:
            _restore_ema(model, ema, state, out_dir)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, history, best, final = state["epoch"] + 1, list(state["history"]), state["best"], state["final"]
        diag = state.get("diagnostics")
        if ctx.is_main:
            log.info("resuming stage %r at epoch %d of %d", name, start + 1, cfg.epochs)
    fwd = _wrap(model, cfg, ctx)
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    for epoch in range(start, cfg.epochs):
        reseed(cfg.seed, k, epoch, ctx.rank)
        row = _train_epoch(model, fwd, optimizer, trainable, train, cfg, ctx, k, epoch, name, ema)
        row["lr"] = optimizer.param_groups[0]["lr"]
        scheduler.step()
        last = epoch == cfg.epochs - 1
        trained = ema.raw_values(model) if ema is not None and ctx.is_main else None
        with ema.applied(model) if ema is not None else contextlib.nullcontext():  # evaluate/save the EMA weights
            if last or (epoch + 1) % cfg.eval_every == 0:
                _sync_buffers(model, ctx)
                final, _, _ = evaluate(model, test, cfg, ctx)
                row.update({"test_accuracy": final["accuracy"],
                            "test_mean_class_accuracy": final["mean_class_accuracy"],
                            "test_mean_confidence": final["mean_confidence"]})
                if callable(getattr(model, "diagnostics", None)):
                    diag = model.diagnostics(b.data for b in test.epoch(0))
                    row.update(diag)
                if best is None or final["accuracy"] > best["metrics"]["accuracy"]:
                    best = {"epoch": epoch + 1, "metrics": final}
                    if ctx.is_main:
                        ckpt.save_weights(model, out_dir / ckpt.BEST, {"epoch": epoch, "stage": name})
            history.append(row)
            if ctx.is_main:
                ckpt.save_weights(model, out_dir / ckpt.LAST, {"epoch": epoch, "stage": name})
        if ctx.is_main:
            extra = {} if ema is None else {"ema": ema.state_dict(), "trained_params": trained}
            ckpt.save_state(state_file, {
                "epoch": epoch, "stage": name, "complete": last, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "history": history, "best": best, "final": final,
                "diagnostics": diag, "package_version": __version__, **extra})
        barrier(ctx)
    if ema is not None:  # the stage's result (next stage's start, final evaluation) is the EMA weights
        ema.copy_to(model)
    if start >= cfg.epochs and ctx.is_main:
        log.info("stage %r already finished (%d epochs)", name, cfg.epochs)
    return StageOutcome(history, final, best, max(0, cfg.epochs - start), diag)


def _restore_ema(model: nn.Module, ema: ParamEMA, state: Mapping[str, Any], out_dir: Path) -> None:
    """On resume: ``last`` holds the EMA weights; bring back the average and the raw trained values."""
    if "ema" not in state or "trained_params" not in state:
        raise UserError(f"{out_dir}/{ckpt.STATE} was written without EMA but ema_decay is set; resume with the "
                        "original ema_decay or restart with --overwrite")
    try:
        ema.load_state_dict(state["ema"])
    except ValueError as err:
        raise UserError(f"{out_dir}: {err}; restart with --overwrite") from None
    ema.load_raw_values(model, state["trained_params"])


def _weights_epoch(path: Path) -> int | None:
    from safetensors import safe_open

    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return int(meta["epoch"]) if "epoch" in meta else None


def _wrap(model: nn.Module, cfg: RunConfig, ctx: DistContext) -> nn.Module:
    fwd = model
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        fwd = DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                  find_unused_parameters=cfg.find_unused_parameters)
    if cfg.compile:
        fwd = torch.compile(fwd)
    return fwd


def _train_epoch(model, fwd, optimizer, trainable, train: PackedBatches, cfg: RunConfig, ctx: DistContext,
                 k: int, epoch: int, stage: str, ema: ParamEMA | None = None) -> dict:
    model.train()
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.float64)
    seen = scored = 0
    parts: dict[str, float] = {}
    bar = tqdm(total=len(train), desc=f"{stage} epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False,
               disable=not (cfg.progress and ctx.is_main), file=sys.stderr)
    for b in train.epoch(epoch, k):
        b.data["stage"] = stage
        with autocast(cfg, ctx.device):
            outputs = fwd(b.data)
            loss, logged = model.loss(outputs, b.data)
        loss_value = float(loss.detach())  # one host sync per step
        if not np.isfinite(loss_value):
            raise UserError(f"the loss became {loss_value} at {stage} epoch {epoch + 1}; lower --lr or check the data")
        # scale so that DDP's gradient average equals the gradient of the global-batch mean
        (loss * (b.local_n * ctx.world_size / b.global_n)).backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(model)
        loss_sum += loss_value * b.local_n
        if "logits" in outputs:  # a step without logits (LLDif 2a) has no train accuracy
            correct += float((outputs["logits"].detach().argmax(1) == b.data["label"]).sum())
            scored += b.local_n
        for key, value in (logged or {}).items():
            parts[key] = parts.get(key, 0.0) + float(value) * b.local_n
        seen += b.local_n
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.4f}", img_s=f"{seen * ctx.world_size / (time.perf_counter() - t0):.0f}")
    bar.close()
    totals = all_reduce_sum(ctx, torch.stack([loss_sum, correct, torch.tensor(float(seen), dtype=torch.float64),
                                              torch.tensor(float(scored), dtype=torch.float64)]))
    n = max(float(totals[2]), 1.0)
    seconds = time.perf_counter() - t0
    row = {"stage": stage, "epoch": epoch + 1, "train_loss": float(totals[0]) / n,
           "train_accuracy": float(totals[1]) / float(totals[3]) if float(totals[3]) > 0 else float("nan"),
           "images": int(totals[2]),
           "img_per_s": float(totals[2]) / seconds if seconds > 0 else float("nan"), "seconds": seconds}
    row.update({f"loss_{key}": value / max(seen, 1) for key, value in parts.items()})  # rank-local parts
    return row


# ----------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------
def run_name(cfg: RunConfig, dataset_name: str, condition: str) -> str:
    return cfg.name or f"{cfg.method}-{dataset_name}-{condition}-s{cfg.seed}"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], check=False, cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _check_run_dir(cfg: RunConfig, run_dir: Path, selected_state: Path) -> None:
    """An existing run directory needs --resume (or --overwrite), except that ``--stage`` may start a
    stage that has no state yet; a resume must keep the settings that change what is computed."""
    saved = run_dir / "config.yaml"
    if not (run_dir.exists() and any(run_dir.iterdir())) or cfg.overwrite:
        return
    new_stage = cfg.stage is not None and not selected_state.is_file()
    if not (cfg.resume or new_stage):
        raise UserError(f"run directory {run_dir} already exists; pass --resume to continue it, "
                        "--overwrite to replace it, or --name for a new one")
    if saved.is_file():
        old = (yaml.safe_load(saved.read_text()) or {}).get("config", {})
        new = json.loads(json.dumps(cfg.to_dict(), default=str))
        changed = sorted(k for k in new if k not in RESUME_FREE_KEYS and old.get(k) != new[k])
        if changed:
            diffs = "; ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in changed)
            raise UserError(f"--resume with settings that differ from {saved}: {diffs}. Resume with the "
                            "original settings, or start a new run (--name/--overwrite)")


def _prepare_run_dir(cfg: RunConfig, run_dir: Path) -> None:
    if cfg.overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def input_sources(model: nn.Module, dataset_root: Path) -> dict[str, str]:
    """The run's external inputs, to log and record: what the method declares (``input_sources``,
    e.g. LLDif's text encoder) and, for methods that read landmarks, which backend made them."""
    sources = dict(getattr(model, "input_sources", {}) or {})
    if getattr(model, "needs_landmarks", False):
        sources["landmarks"] = describe_landmark_file(dataset_root / LANDMARKS_FILE)
    return sources


def _write_config(cfg: RunConfig, run_dir: Path, builder: Any, stages: list[dict], extra: dict) -> None:
    doc = {
        "package_version": __version__, "torch_version": torch.__version__, "git_commit": _git_commit(),
        "command_line": cfg.command_line, "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "config": cfg.to_dict(), "method_defaults": dict(getattr(builder, "DEFAULTS", {}) or {}),
        "stages": [{"name": s["name"], **{k: v for k, v in cfg.for_stage(s["name"], s).to_dict().items()
                                          if k in ("epochs", "lr", "optimizer", "scheduler", "batch_size")}}
                   for s in stages],
        **extra,
    }
    doc = json.loads(json.dumps(doc, default=str))  # plain types only (tuples, TorchVersion, Paths)
    atomic_write_bytes(run_dir / "config.yaml", yaml.safe_dump(doc, sort_keys=False).encode())


def _write_metrics(run_dir: Path, histories: dict[str, list[dict]]) -> None:
    rows = [row for hist in histories.values() for row in hist]
    atomic_write_bytes(run_dir / "metrics.csv", pd.DataFrame(rows).to_csv(index=False).encode())


def _write_predictions(run_dir: Path, packed, rows: np.ndarray, probs: np.ndarray) -> None:
    names = packed.class_names
    df = pd.DataFrame({"path": packed.relpaths[rows],
                       "label": [names[i] for i in packed.labels[rows]],
                       "prediction": [names[i] for i in probs.argmax(1)]})
    for i, cls in enumerate(names):
        df[f"p_{cls}"] = probs[:, i].round(6)
    atomic_write_bytes(run_dir / "predictions.csv", df.to_csv(index=False).encode())


def run_training(config: RunConfig) -> Path:
    """Train and evaluate ``config.method`` on ``config.data``; returns the run directory.

    Works in one process or under torchrun (DDP, rank 0 writes). See the module docstring.
    """
    config.validate()
    config = dataclasses.replace(config, data=str(Path(config.data).expanduser().resolve()))
    ctx = init_from_env(config.device)
    flush_cpu_subnormals()
    try:
        return _run(config, ctx)
    finally:
        shutdown(ctx)


def _run(cfg: RunConfig, ctx: DistContext) -> Path:
    from lldif_bench.datasets import open_dataset
    from lldif_bench.datasets.packed import pack_dataset
    from lldif_bench.methods import load_all_methods

    builder = load_all_methods().get(cfg.method)
    stages = method_stages(builder)
    selected = select_stages(stages, cfg.stage)
    for s in stages:  # validate every stage's overrides before any work
        cfg.for_stage(s["name"], s).validate()
    unknown = sorted(set(cfg.stages) - {s["name"] for s in stages})
    if unknown:
        raise UserError(f"stages: {', '.join(unknown)} are not stages of {cfg.method!r} "
                        f"({', '.join(s['name'] for s in stages)})")
    dataset_name, condition = describe_data(cfg.data)
    run_dir = Path(cfg.out) / run_name(cfg, dataset_name, condition)
    # every rank runs the (read-only) checks, so a bad setting stops all of them, not only rank 0
    _check_run_dir(cfg, run_dir, stage_dir(run_dir, stages, selected[0]) / ckpt.STATE)
    barrier(ctx)
    if ctx.is_main:
        _prepare_run_dir(cfg, run_dir)
    barrier(ctx)
    dataset = open_dataset(cfg.data)
    # the pack's file lock lets the first rank build it while the others wait, then reuse it
    packed = pack_dataset(dataset, cfg.image_size, cache_dir=cfg.cache_dir, workers=cfg.workers,
                          progress=cfg.progress and ctx.is_main)
    num_train, num_test = len(packed.split_indices("train")), len(packed.split_indices("test"))
    if num_train == 0 or num_test == 0:
        raise UserError(f"{cfg.data} has {num_train} usable train and {num_test} test images; both splits are needed")
    model = build_method(cfg, packed.num_classes, num_train)
    if getattr(model, "needs_landmarks", False) and packed.landmarks is None:
        raise UserError(f"method {cfg.method!r} needs 68-point landmarks, but {dataset.root} has no landmarks.npz; "
                        f"run `lldif-bench landmarks {cfg.data}` first")
    inputs = input_sources(model, Path(dataset.root))
    for what, source in inputs.items():
        log.info("%s: %s", what, source)
    on_cuda = ctx.device.type == "cuda"
    if ctx.distributed and on_cuda and cfg.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(ctx.device)
    if cfg.channels_last and on_cuda:
        model.to(memory_format=torch.channels_last)
    extra = {"dataset": {"name": dataset_name, "condition": condition, "root": str(Path(cfg.data).resolve()),
                         "num_train": num_train, "num_test": num_test, "class_names": packed.class_names,
                         "packed_cache": str(packed.path)},
             "world_size": ctx.world_size, "device": str(ctx.device), "params": count_params(model),
             "inputs": inputs}
    if ctx.is_main:
        _write_config(cfg, run_dir, builder, stages, extra)

    histories: dict[str, list[dict]] = {}
    diagnostics: dict[str, dict] = {}
    for j in range(selected[0]):  # earlier stages' metrics, for metrics.csv
        state = stage_dir(run_dir, stages, j) / ckpt.STATE
        if state.is_file():
            saved = ckpt.load_state(state)
            histories[stages[j]["name"]] = saved["history"]
            if saved.get("diagnostics"):
                diagnostics[stages[j]["name"]] = saved["diagnostics"]
    prepare_for_stage(model, stages, selected[0], run_dir)
    outcome = None
    for k in selected:
        if k != selected[0]:
            enter_stage(model, stages[k]["name"])
        model.to(ctx.device)  # modules a stage hook adds are created on the CPU
        if cfg.channels_last and on_cuda:
            model.to(memory_format=torch.channels_last)
        scfg = cfg.for_stage(stages[k]["name"], stages[k]).validate()
        train = PackedBatches(packed, "train", scfg.batch_size, ctx, train=True, seed=cfg.seed, augment=cfg.augment,
                              limit_batches=cfg.limit_batches, channels_last=cfg.channels_last and on_cuda)
        test = PackedBatches(packed, "test", scfg.batch_size, ctx, train=False,
                             channels_last=cfg.channels_last and on_cuda)
        outcome = train_stage(model, scfg, stages, k, run_dir, train, test, ctx)
        histories[stages[k]["name"]] = outcome.history
        if outcome.diagnostics:
            diagnostics[stages[k]["name"]] = outcome.diagnostics
        if ctx.is_main:
            _write_metrics(run_dir, histories)
    trained_now = outcome is not None and outcome.trained_epochs > 0
    if selected[-1] == len(stages) - 1 and outcome is not None and (
            trained_now or not (run_dir / "results.json").is_file()):
        _finish(cfg, model, stages, run_dir, packed, ctx, outcome, extra, dataset_name, condition, diagnostics)
    barrier(ctx)
    return run_dir


def _finish(cfg, model, stages, run_dir, packed, ctx, outcome: StageOutcome, extra, dataset_name, condition,
            diagnostics: dict[str, dict] | None = None) -> None:
    test = PackedBatches(packed, "test", cfg.for_stage(stages[-1]["name"], stages[-1]).batch_size, ctx,
                         train=False)
    _sync_buffers(model, ctx)
    final, rows, probs = evaluate(model, test, cfg, ctx)
    if not ctx.is_main:
        return
    final_dir = stage_dir(run_dir, stages, len(stages) - 1)
    if len(stages) > 1:  # the deployable weights sit where predict looks, whatever the stage count
        for name in (ckpt.LAST, ckpt.BEST):
            if (final_dir / name).is_file():
                tmp = run_dir / "checkpoints" / f".{name}.copy"
                shutil.copyfile(final_dir / name, tmp)
                tmp.replace(run_dir / "checkpoints" / name)
    _write_predictions(run_dir, packed, rows, probs)
    epochs = outcome.history[-1]["epoch"] if outcome.history else None
    best = outcome.best or {"epoch": epochs, "metrics": final}
    results = {
        "method": cfg.method, "dataset": dataset_name, "condition": condition, "seed": cfg.seed,
        "stage": stages[-1]["name"], "epochs": epochs, "params": extra["params"],
        "class_names": packed.class_names, "num_train": extra["dataset"]["num_train"],
        "num_test": extra["dataset"]["num_test"], "package_version": __version__,
        "final": final,
        "best": {"epoch": best["epoch"], "selection": "test-selected (best epoch picked on the test split; "
                 "optimistic, reported for comparison with the original papers)", **best["metrics"]},
    }
    if diagnostics:  # the method's diagnostics() at the end of each stage, by stage name
        results["diagnostics"] = diagnostics
    atomic_write_bytes(run_dir / "results.json", json.dumps(results, indent=1).encode())
    if cfg.leaderboard:
        append_row(Path(cfg.out) / "leaderboard.csv", {
            "method": cfg.method, "dataset": dataset_name, "condition": condition,
            "accuracy": round(final["accuracy"], 6), "mean_class_accuracy": round(final["mean_class_accuracy"], 6),
            "epochs": epochs, "seed": cfg.seed, "params": extra["params"], "run_dir": str(run_dir),
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")})
    log.info("run finished: accuracy %.4f, mean class accuracy %.4f -> %s", final["accuracy"],
             final["mean_class_accuracy"], run_dir)


__all__ = ["build_method", "describe_data", "method_stages", "run_training", "train_stage"]
