"""Evidence for the figures and the sweep, computed from finished runs.

Uses the harness's seams: :func:`lldif_bench.training.predict.load_run` (a run's trained method),
the packed test split (:func:`lldif_bench.datasets.packed.pack_dataset`, so images, sizes and
landmarks are exactly what training saw) and ``normalize``. What the harness and LLDif do not offer
is done here and kept small:

- penultimate features: ``method.features`` when the method has it, else the input of the last
  ``nn.Linear(…, K)`` that fires during ``predict`` (LLDif's classifier head);
- the EPD at each reverse diffusion step: ``student.estimate_epd(x).trajectory`` (Z_T … Z_0);
- accuracy at another number of diffusion iterations T: the student's ``EPDDiffusion`` is swapped
  for one with T steps and the same schedule end points (weights untouched; restored afterwards).

Results are cached under ``<run>/eval/<data name>-<hash>/`` so figures can be redrawn cheaply.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from lldif_bench.errors import UserError
from lldif_bench.reports.evidence import (
    confidence_set,
    feature_panel,
    read_step_embeddings,
    save_features,
    save_step_embeddings,
)
from lldif_bench.reports.figures import ConfidenceSet, FeaturePanel

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    run_dir: Path
    model: nn.Module
    method: str
    label: str  # display name (method, plus variant for LLDif)
    image_size: int
    class_names: list[str]
    device: torch.device


@dataclass
class TestSplit:
    """A test split at one image size: uint8 images ``(N, S, S, 3)``, labels, landmarks, keys."""

    images: np.ndarray
    labels: np.ndarray
    landmarks: np.ndarray | None
    relpaths: list[str]
    class_names: list[str]


def load_trained(run_dir: str | Path, device: str = "auto", weights: str = "last") -> LoadedRun:
    from lldif_bench.reports.runs import find_key, read_config
    from lldif_bench.reports.tables import METHOD_NAMES
    from lldif_bench.training.predict import load_run

    run_dir = Path(run_dir)
    model, cfg, class_names = load_run(run_dir, weights, device)
    variant = find_key(read_config(run_dir).get("config", {}), "variant")
    label = METHOD_NAMES.get(cfg.method, cfg.method)
    if cfg.method == "lldif" and variant:
        label = f"LLDif-{variant}"
    dev = next(model.parameters()).device
    return LoadedRun(run_dir, model, cfg.method, label, int(cfg.image_size), list(class_names), dev)


def load_test_split(data_dir: str | Path, image_size: int) -> TestSplit:
    """The test split of ``data_dir`` packed at ``image_size`` (the harness's cache, built if needed)."""
    from lldif_bench.datasets import open_dataset
    from lldif_bench.datasets.packed import pack_dataset

    packed = pack_dataset(open_dataset(data_dir), image_size, progress=False)
    rows = packed.split_indices("test")
    if len(rows) == 0:
        raise UserError(f"{data_dir} has no usable test images")
    landmarks = None if packed.landmarks is None else np.asarray(packed.landmarks[rows])
    return TestSplit(np.asarray(packed.images[rows]), np.asarray(packed.labels[rows]), landmarks,
                     [str(p) for p in packed.relpaths[rows]], list(packed.class_names))


def _batches(images: np.ndarray, landmarks: np.ndarray | None, batch_size: int, device: torch.device
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    from lldif_bench.training.augment import normalize

    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
        x = normalize(x.permute(0, 3, 1, 2).float() / 255.0)
        lm = None
        if landmarks is not None:
            lm = torch.from_numpy(np.ascontiguousarray(landmarks[start:start + batch_size])).float().to(device)
        yield x, lm


def _check_landmarks(run: LoadedRun, split: TestSplit, data_dir) -> None:
    if getattr(run.model, "needs_landmarks", False) and split.landmarks is None:
        raise UserError(f"{run.label} needs 68-point landmarks but {data_dir} has none; "
                        f"run `lldif-bench landmarks {data_dir}` first")


@contextlib.contextmanager
def _head_input_hook(model: nn.Module, num_classes: int):
    """Capture the input of the last ``nn.Linear(…, num_classes)`` called (the classifier head)."""
    captured: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, args, _out: captured.append(args[0].detach()))
             for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    try:
        yield captured
    finally:
        for h in hooks:
            h.remove()


@torch.no_grad()
def infer(run: LoadedRun, images: np.ndarray, landmarks: np.ndarray | None, batch_size: int = 128,
          features: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Softmax probabilities ``(N, K)`` (and penultimate features ``(N, D)`` when asked)."""
    probs, feats = [], []
    k = len(run.class_names)
    has_features = callable(getattr(run.model, "features", None))
    for x, lm in _batches(images, landmarks, batch_size, run.device):
        if features and not has_features:
            with _head_input_hook(run.model, k) as captured:
                logits = run.model.predict(x, lm)
            if not captured:
                raise UserError(f"{run.label} exposes no features() and no Linear(…, {k}) head to read them from")
            feats.append(captured[-1].float().reshape(len(x), -1).cpu().numpy())
        else:
            logits = run.model.predict(x, lm)
            if features:
                feats.append(run.model.features(x, lm).float().reshape(len(x), -1).cpu().numpy())
        probs.append(F.softmax(logits.float(), dim=1).cpu().numpy())
    return np.concatenate(probs), (np.concatenate(feats) if features else None)


def cache_dir_for(run_dir: Path, data_dir: str | Path, tag: str = "") -> Path:
    """Cache folder of one (run weights, data folder): a retrained or resumed run gets a new one."""
    weights = Path(run_dir) / "checkpoints" / "last.safetensors"
    if weights.is_file():
        stat = weights.stat()
        tag = f"{tag}|{stat.st_size}|{stat.st_mtime_ns}"
    resolved = str(Path(data_dir).resolve())
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "_", Path(resolved).name) or "data"
    digest = hashlib.sha256((resolved + "|" + tag).encode()).hexdigest()[:8]
    return Path(run_dir) / "eval" / f"{name}-{digest}"


def predictions_frame(split: TestSplit, probs: np.ndarray) -> pd.DataFrame:
    """The harness's predictions layout: path, label, prediction, ``p_<class>``."""
    names = split.class_names
    frame = pd.DataFrame({"path": split.relpaths, "label": [names[i] for i in split.labels],
                          "prediction": [names[i] for i in probs.argmax(1)]})
    for i, name in enumerate(names):
        frame[f"p_{name}"] = probs[:, i].round(6)
    return frame


def run_confidence(run_dir: str | Path, data_dir: str | Path, condition: str, *, device: str = "auto",
                   batch_size: int = 128) -> ConfidenceSet:
    """Fig. 6 input: the run evaluated on ``data_dir``'s test split (predictions cached)."""
    run = load_trained(run_dir, device)
    target = cache_dir_for(run.run_dir, data_dir) / "predictions.csv"
    if not target.is_file():
        split = load_test_split(data_dir, run.image_size)
        _check_landmarks(run, split, data_dir)
        probs, _ = infer(run, split.images, split.landmarks, batch_size)
        target.parent.mkdir(parents=True, exist_ok=True)
        predictions_frame(split, probs).to_csv(target, index=False)
    return confidence_set(target, run.label, condition)


def run_features(run_dir: str | Path, data_dir: str | Path, condition: str, *, device: str = "auto",
                 batch_size: int = 128) -> FeaturePanel:
    """Fig. 5 input: penultimate features of the run on ``data_dir``'s test split (cached ``.npz``)."""
    run = load_trained(run_dir, device)
    target = cache_dir_for(run.run_dir, data_dir) / "features.npz"
    if not target.is_file():
        split = load_test_split(data_dir, run.image_size)
        _check_landmarks(run, split, data_dir)
        _, feats = infer(run, split.images, split.landmarks, batch_size, features=True)
        save_features(target, feats, split.labels, run.label, condition)
    return feature_panel(target, run.label, condition)


def _student(run: LoadedRun) -> nn.Module:
    student = getattr(run.model, "student", run.model)
    if not hasattr(student, "estimate_epd") or not hasattr(student, "diffusion"):
        raise UserError(f"{run.run_dir} is a {run.method} run; this figure needs an LLDif run")
    return student


@torch.no_grad()
def run_epd_steps(run_dir: str | Path, data_dir: str | Path, *, device: str = "auto", batch_size: int = 128,
                  seed: int = 0) -> tuple[dict[int, np.ndarray], np.ndarray, Path]:
    """Fig. 7 input: Z_t for t = T … 0 of every test image (seeded Z_T), cached as ``epd_steps.npz``."""
    run = load_trained(run_dir, device)
    student = _student(run)
    target = cache_dir_for(run.run_dir, data_dir, f"epd-s{seed}") / "epd_steps.npz"
    if not target.is_file():
        split = load_test_split(data_dir, run.image_size)
        gen = torch.Generator(device=run.device).manual_seed(seed)
        chunks: list[list[np.ndarray]] = []
        for x, _ in _batches(split.images, None, batch_size, run.device):
            traj = student.estimate_epd(x, generator=gen).trajectory
            chunks.append([z.float().cpu().numpy() for z in traj])
        steps = len(chunks[0]) - 1  # trajectory = Z_T, …, Z_0
        emb = {steps - i: np.concatenate([c[i] for c in chunks]) for i in range(steps + 1)}
        save_step_embeddings(target, emb, split.labels)
    emb, labels = read_step_embeddings(target)
    return emb, labels, target


@contextlib.contextmanager
def diffusion_steps(student: nn.Module, timesteps: int):
    """Temporarily give the LLDif student an ``EPDDiffusion`` with ``timesteps`` steps (same schedule)."""
    from lldif_bench.models.lldif.diffusion import EPDDiffusion

    if timesteps < 1:
        raise UserError(f"diffusion iterations must be at least 1, got {timesteps}")
    original = student.diffusion
    d = student.cfg.diffusion
    replacement = EPDDiffusion(timesteps, d.linear_start, d.linear_end, d.schedule, d.parameterization)
    student.diffusion = replacement.to(next(student.parameters()).device)
    try:
        yield student
    finally:
        student.diffusion = original


def run_iterations(run_dir: str | Path, data_dir: str | Path, iterations: list[int], *, device: str = "auto",
                   batch_size: int = 128) -> tuple[list[int], list[float]]:
    """Fig. 8 input: test accuracy (%) of one trained LLDif evaluated at each number of iterations T."""
    run = load_trained(run_dir, device)
    student = _student(run)
    if not student.cfg.stages.use_diffusion:
        raise UserError(f"{run.run_dir} is LLDif without the diffusion model (V1): nothing to vary")
    split = load_test_split(data_dir, run.image_size)
    _check_landmarks(run, split, data_dir)
    acc = []
    for t in iterations:
        with diffusion_steps(student, t):
            probs, _ = infer(run, split.images, split.landmarks, batch_size)
        acc.append(float((probs.argmax(1) == split.labels).mean() * 100.0))
        log.info("T=%d: accuracy %.2f%%", t, acc[-1])
    return list(iterations), acc
