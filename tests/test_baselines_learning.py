"""Every registered baseline learns, and learns reproducibly (timm-style: registering a method brings
these tests with it).

- default suite: on 328 synthetic faces (the suite's generator, 7 classes in RAF-DB-like proportions,
  the largest 39 %, 32 px), 60 steps of the method's demo recipe (its own optimiser groups and
  learning-rate factors, as the harness builds them) lower the loss and lift train accuracy, scored
  with ``predict`` in eval mode, well above the majority class. Faces, not simple patterns: DAN's
  from-scratch head at a 1×1 layer4 map learnt 4-class bars (99.6 %) yet stayed at the majority class
  on these faces (39.3 % after 60 steps); ResNet-18 reaches 96 % (measured 2026-12-08; the lowest
  baseline, ARM, 81 %);
- ``slow``: each method overfits a small set (mirror-symmetric bars);
- two harness runs of a method with one seed give identical weights and results.

Expressions are mirror-symmetric labels, so flip-consistency methods (EAC) and horizontal-flip
augmentation leave them intact.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_baselines_methods import one_thread  # noqa: F401  (autouse: one intra-op thread per test)

import baselines  # noqa: F401  (registers the baseline methods)
from lldif_bench.demo import demo_recipe
from lldif_bench.methods import METHODS, load_all_methods
from lldif_bench.synthetic.render import render_face, sample_face_spec
from lldif_bench.training.augment import IMAGENET_MEAN, IMAGENET_STD
from lldif_bench.training.engine import trainable_groups
from lldif_bench.training.optim import build_optimizer

# every registered single-stage method (multi-stage LLDif has its own overfit and stage tests; the
# training tests' toy methods end in "-test")
NAMES = [n for n in load_all_methods().names() if not getattr(METHODS.get(n), "STAGES", None)
         and not n.endswith("-test")]
SIZE = 32
BATCH = 32
FACE_COUNTS = (24, 8, 16, 128, 56, 24, 72)   # 328 faces, RAF-DB-like proportions; majority 39 %
FACE_STEPS = 60
BAR_COUNTS = (24, 18, 12, 10)                # the overfit test's small set


@functools.cache
def face_set(counts=FACE_COUNTS, seed: int = 0, render_size: int = 64) -> dict:
    """Faces of the suite's synthetic generator, rendered at ``render_size`` and resized to ``SIZE``
    (antialiased), normalised with the ImageNet statistics the harness uses; exact landmarks."""
    images, points, labels = [], [], []
    for label, count in enumerate(counts):
        for _ in range(count):
            face = render_face(sample_face_spec(label, seed, len(labels)), render_size)
            images.append(face.image)
            points.append(face.landmarks * (SIZE / render_size))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    return {"image": (x - mean) / std, "label": torch.tensor(labels), "index": torch.arange(len(labels)),
            "landmarks": torch.from_numpy(np.stack(points)).float()}


def pattern_set(counts=BAR_COUNTS, seed: int = 0) -> dict:
    """Normalised images of bars on noise: 0 top bar, 1 bottom bar, 2 centre column, 3 both bars.

    Bar colour, brightness and a ±2 px shift vary per image; landmarks are one jittered layout for
    every class (a method needing them must still read the class from the image).
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(counts)])
    images = 0.6 * torch.randn(len(labels), 3, SIZE, SIZE, generator=g)
    bar = SIZE // 6
    for i, y in enumerate(labels.tolist()):
        colour = (0.8 + 1.2 * torch.rand(3, 1, 1, generator=g))
        dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
        top, bottom = 4 + dy, SIZE - 4 - bar + dy
        if y in (0, 3):
            images[i, :, top:top + bar, 3:-3] += colour
        if y in (1, 3):
            images[i, :, bottom:bottom + bar, 3:-3] += colour
        if y == 2:
            c = SIZE // 2 - bar // 2 + dx
            images[i, :, 3:-3, c:c + bar] += colour
    base = 4 + torch.rand(68, 2, generator=g) * (SIZE - 8)
    landmarks = base + torch.randn(len(labels), 68, 2, generator=g)
    return {"image": images, "label": labels, "index": torch.arange(len(labels)), "landmarks": landmarks}


def subset(data: dict, rows: torch.Tensor, epoch: int = 0) -> dict:
    return {**{k: v[rows] for k, v in data.items()}, "epoch": epoch}


def build_with_optimiser(name: str, num_classes: int, num_train: int, seed: int = 0):
    """The method and its optimiser exactly as the demo's harness builds them (lr factors included)."""
    recipe = demo_recipe(name)
    torch.manual_seed(seed)
    model = METHODS.get(name)(num_classes, num_train=num_train, pretrained=None, image_size=SIZE,
                              **recipe.get("method_options", {}))
    groups = trainable_groups(model, recipe["lr"])
    optimiser = build_optimizer(recipe["optimizer"], groups, recipe["lr"], recipe["weight_decay"],
                                recipe.get("optimizer_params", {}))
    return model, optimiser


def train_steps(model, optimiser, data: dict, steps: int, seed: int = 0) -> list[float]:
    g = torch.Generator().manual_seed(seed)
    n, per_epoch = len(data["label"]), len(data["label"]) // BATCH
    order, losses = torch.randperm(n, generator=g), []
    model.train()
    for step in range(steps):
        if step and step % per_epoch == 0:
            order = torch.randperm(n, generator=g)
        rows = order[(step % per_epoch) * BATCH:(step % per_epoch + 1) * BATCH]
        batch = subset(data, rows, epoch=step // per_epoch)
        loss, _ = model.loss(model(batch), batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def accuracy(model, data: dict, batch: int = 60) -> float:
    model.eval()
    landmarks = data["landmarks"] if model.needs_landmarks else None
    correct = 0
    for start in range(0, len(data["label"]), batch):
        rows = slice(start, start + batch)
        logits = model.predict(data["image"][rows], None if landmarks is None else landmarks[rows])
        correct += int((logits.argmax(1) == data["label"][rows]).sum())
    return correct / len(data["label"])


@pytest.mark.parametrize("name", NAMES)
def test_method_learns_faces_beyond_the_majority_class(name):
    data = face_set()
    majority = max(FACE_COUNTS) / sum(FACE_COUNTS)
    model, optimiser = build_with_optimiser(name, len(FACE_COUNTS), len(data["label"]))
    losses = train_steps(model, optimiser, data, FACE_STEPS)
    acc = accuracy(model, data)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), losses
    assert acc >= majority + 0.30, f"{name}: train accuracy {acc:.3f} (majority class {majority:.3f})"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_method_overfits_a_small_set(name):
    """64 images, 10 passes: (near) every training image is predicted right in eval mode."""
    data = pattern_set(seed=1)
    model, optimiser = build_with_optimiser(name, len(BAR_COUNTS), len(data["label"]))
    train_steps(model, optimiser, data, steps=20 * (len(data["label"]) // BATCH))
    assert accuracy(model, data) >= 0.95


@pytest.mark.parametrize("name", NAMES)
def test_two_runs_with_one_seed_are_identical(name, tmp_path):
    """The whole harness path (init, batch order, augmentation, the method's own randomness) twice,
    with two intra-op threads as the demo uses by default."""
    from safetensors.torch import load_file
    from test_training_support import make_folder_dataset, quiet_config

    from lldif_bench.landmarks.fallback import canonical_shape_in_crop
    from lldif_bench.training import run_training

    data = make_folder_dataset(tmp_path / "tinyfer", per_class_train=3, per_class_test=1, size=32)
    rel = sorted(str(p.relative_to(data)) for p in data.rglob("*.png"))
    shape = canonical_shape_in_crop(32, 32)
    np.savez(data / "landmarks.npz", relpath=np.array(rel),
             points=np.repeat(shape[None], len(rel), 0).astype(np.float32))
    torch.set_num_threads(2)
    runs = []
    for k in range(2):
        cfg = quiet_config(method=name, data=str(data), out=str(tmp_path / f"runs{k}"), epochs=2, batch_size=7,
                           image_size=32, seed=3, leaderboard=False, **demo_optimiser(name))
        runs.append(run_training(cfg))
    first, second = (load_file(str(r / "checkpoints" / "last.safetensors")) for r in runs)
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), f"{name}: {key} differs between two runs with one seed"
    results = [json.loads((r / "results.json").read_text())["final"] for r in runs]
    assert results[0] == results[1]


def demo_optimiser(name: str) -> dict:
    recipe = demo_recipe(name)
    return {k: recipe[k] for k in ("lr", "optimizer", "optimizer_params", "weight_decay", "method_options")
            if k in recipe}
