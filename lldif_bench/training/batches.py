"""Batches sliced from the packed memmap: shuffled by (seed, epoch), augmented on the device.

No worker processes and no per-epoch decoding: a batch is one fancy-index read of the uint8 memmap,
one host→device copy, then Kornia augmentation on the device. A background thread reads the next
batch while the current one trains. Under DDP every rank walks the same global order and takes its
contiguous chunk of each global batch (a DistributedSampler equivalent that keeps global batches
identical to a single-process run).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lldif_bench.datasets.packed import PackedDataset
from lldif_bench.training.augment import (
    augment_images,
    normalize,
    sample_params,
    transform_landmarks,
)
from lldif_bench.training.config import AugmentConfig
from lldif_bench.training.distributed import DistContext, chunk


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across runs, processes and platforms)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


@dataclass
class Batch:
    """A batch for this rank plus the size of the global batch it belongs to."""

    data: dict[str, Any]
    local_n: int
    global_n: int


class PackedBatches:
    """Iterate one split of a :class:`PackedDataset` in (global) batches of ``batch_size``."""

    def __init__(self, packed: PackedDataset, split: str, batch_size: int, ctx: DistContext, *,
                 train: bool, seed: int = 0, augment: AugmentConfig | None = None,
                 limit_batches: int | None = None, channels_last: bool = False, prefetch: bool = True) -> None:
        self.packed = packed
        self.rows = packed.split_indices(split)
        self.batch_size = batch_size
        self.ctx = ctx
        self.train = train
        self.seed = seed
        self.augment = augment
        self.limit_batches = limit_batches
        self.channels_last = channels_last
        self.prefetch = prefetch
        self.size = packed.image_size

    def __len__(self) -> int:
        steps = -(-len(self.rows) // self.batch_size)
        return min(steps, self.limit_batches) if self.limit_batches else steps

    def order(self, epoch: int, stage: int = 0) -> np.ndarray:
        """Positions (into this split) in the order of ``epoch``: a permutation when training."""
        n = len(self.rows)
        if not self.train:
            return np.arange(n)
        return torch.randperm(n, generator=generator(self.seed, stage, epoch, 0x5EED)).numpy()

    def _read(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        rows = self.rows[positions]
        sort = np.argsort(rows, kind="stable")
        unsort = np.empty_like(sort)
        unsort[sort] = np.arange(len(sort))
        out = {"image": np.ascontiguousarray(self.packed.images[rows[sort]][unsort]),
               "label": self.packed.labels[rows], "position": positions, "row": rows}
        if self.packed.landmarks is not None:
            out["landmarks"] = self.packed.landmarks[rows]
        return out

    def _plan(self, epoch: int, stage: int) -> list[tuple[int, np.ndarray, int]]:
        order = self.order(epoch, stage)
        plan = []
        for step in range(len(self)):
            global_pos = order[step * self.batch_size:(step + 1) * self.batch_size]
            if len(global_pos) < self.ctx.world_size:
                break  # a tail smaller than the number of ranks cannot be shared; dropped
            local = global_pos[chunk(len(global_pos), self.ctx.rank, self.ctx.world_size)]
            plan.append((step, local, len(global_pos)))
        return plan

    def epoch(self, epoch: int = 0, stage: int = 0) -> Iterator[Batch]:
        """Batches of ``epoch`` on ``ctx.device`` (augmented when training with an augment config)."""
        plan = self._plan(epoch, stage)
        if not plan:
            return
        pool = ThreadPoolExecutor(max_workers=1) if self.prefetch else None
        try:
            pending = pool.submit(self._read, plan[0][1]) if pool else None
            for i, (step, local, global_n) in enumerate(plan):
                arrays = pending.result() if pool else self._read(local)
                if pool and i + 1 < len(plan):
                    pending = pool.submit(self._read, plan[i + 1][1])
                yield Batch(self._to_device(arrays, epoch, stage, step, global_n), len(local), global_n)
        finally:
            if pool:
                pool.shutdown(wait=True)

    def _to_device(self, arrays: dict[str, np.ndarray], epoch: int, stage: int, step: int,
                   global_n: int) -> dict[str, Any]:
        dev = self.ctx.device
        images = torch.from_numpy(arrays["image"])
        if dev.type == "cuda":
            images = images.pin_memory()
        x = images.to(dev, non_blocking=True).permute(0, 3, 1, 2).float()  # 0–255; scaled in the fused normalise
        landmarks = None
        if "landmarks" in arrays:
            landmarks = torch.from_numpy(np.ascontiguousarray(arrays["landmarks"])).to(dev)
        if self.train and self.augment is not None:
            params = sample_params(global_n, self.size, self.augment, generator(self.seed, stage, epoch, step))
            params = params[chunk(global_n, self.ctx.rank, self.ctx.world_size)]
            x = augment_images(x, params, input_scale=1 / 255)
            if landmarks is not None:
                landmarks = transform_landmarks(landmarks, params, self.size)
        else:
            x = normalize(x, 1 / 255)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        batch: dict[str, Any] = {
            "image": x,
            "label": torch.from_numpy(np.asarray(arrays["label"], dtype=np.int64)).to(dev),
            "index": torch.from_numpy(np.asarray(arrays["position"], dtype=np.int64)).to(dev),
            "row": arrays["row"],
            "epoch": epoch,
        }
        if landmarks is not None:
            batch["landmarks"] = landmarks
        return batch
