"""Fixtures shared by the training tests: a tiny learnable ImageFolder dataset and toy methods.

(No tests here; the toy methods register themselves with METHODS on import.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lldif_bench.emotions import CANONICAL
from lldif_bench.imageio import write_image
from lldif_bench.methods import METHODS

# A distinct colour per class; images are that colour plus a class-specific stripe and noise.
PALETTE = np.array([[220, 40, 40], [40, 220, 40], [40, 40, 220], [220, 220, 40], [220, 40, 220],
                    [40, 220, 220], [128, 128, 128]], dtype=np.float32)


def make_folder_dataset(root: Path, per_class_train: int = 6, per_class_test: int = 3, size: int = 40,
                        seed: int = 0, grey_every: int = 0) -> Path:
    """ImageFolder layout ROOT/{train,test}/<emotion>/<n>.png with a learnable signal."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class_train), ("test", per_class_test)):
        for k, name in enumerate(CANONICAL):
            for i in range(n):
                img = PALETTE[k] * 0.6 + rng.normal(0, 25, (size, size, 3))
                img[:, (k * size) // 7:((k + 1) * size) // 7] += 60
                img = np.clip(img, 0, 255).astype(np.uint8)
                if grey_every and i % grey_every == 0:
                    img = img.mean(axis=2, keepdims=True).astype(np.uint8)
                write_image(root / split / name / f"{i:03d}.png", img)
    return root


class ToyNet(nn.Module):
    """Conv → ReLU → pool → linear; no BatchNorm, so DDP and one process compute the same thing."""

    def __init__(self, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.head = nn.Linear(8, num_classes)
        self.dropout = nn.Dropout(dropout)

    def embed(self, images):
        f = F.adaptive_avg_pool2d(F.relu(self.features(images)), 1).flatten(1)
        return self.head(self.dropout(f))

    def forward(self, batch):
        return {"logits": self.embed(batch["image"])}

    def loss(self, outputs, batch):
        ce = F.cross_entropy(outputs["logits"], batch["label"])
        return ce, {"ce": float(ce.detach())}

    def predict(self, images, landmarks=None):
        return self.embed(images)


class ToyStaged(ToyNet):
    """Two stages: ``warm`` trains the conv only; ``tune`` adds a bias module and trains the head + it."""

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes)
        self.stages_entered: list[str] = []
        self.extra: nn.Module | None = None

    def set_stage(self, name: str) -> None:
        self.stages_entered.append(name)
        if name == "tune" and self.extra is None:
            self.extra = nn.Linear(8, self.head.out_features)
            nn.init.zeros_(self.extra.weight)
            nn.init.zeros_(self.extra.bias)
        train_conv = name == "warm"
        for p in self.features.parameters():
            p.requires_grad_(train_conv)
        for p in self.head.parameters():
            p.requires_grad_(not train_conv)
        if self.extra is not None:
            for p in self.extra.parameters():
                p.requires_grad_(not train_conv)

    def embed(self, images):
        f = F.adaptive_avg_pool2d(F.relu(self.features(images)), 1).flatten(1)
        out = self.head(f)
        return out + self.extra(f) if self.extra is not None else out


def _build_toy(num_classes, *, num_train, pretrained=None, dropout: float = 0.0, image_size: int = 32):
    return ToyNet(num_classes, dropout)


_build_toy.DEFAULTS = {"lr": 0.02, "epochs": 3, "batch_size": 16, "image_size": 32, "scheduler": "none",
                       "scheduler_params": {}, "notes": "test toy"}


def _build_staged(num_classes, *, num_train, pretrained=None, image_size: int = 32):
    return ToyStaged(num_classes)


_build_staged.DEFAULTS = {"lr": 0.02, "epochs": 2, "batch_size": 16, "image_size": 32, "scheduler": "none", "scheduler_params": {}}
_build_staged.STAGES = ({"name": "warm", "epochs": 1, "lr": 0.05}, "tune")

for _name, _builder in (("toy-test", _build_toy), ("toy-staged-test", _build_staged)):
    if _name not in METHODS:
        METHODS.add(_name, _builder, "test toy method")


def quiet_config(**kw):
    """A RunConfig resolved like the CLI does, with quiet, fast settings for tests."""
    from lldif_bench.training.config import resolve_config

    base = {"progress": False, "workers": 1, "device": "cpu", "augment": None}
    base.update(kw)
    aug = base.pop("augment")
    cfg = resolve_config({k: v for k, v in base.items()})
    if aug is not None:
        from lldif_bench.training.config import apply_overrides

        cfg = apply_overrides(cfg, {"augment": aug}, "test").validate()
    return cfg


def weights_of(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))
