"""The three stages of a build and the process pool that runs them.

Workers decode sources (and sample each item's parameters), the main process degrades same-shape
batches on the device, workers encode and write outputs atomically. ``workers=0`` runs the same
functions inline (useful for debugging and profiling).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import cv2
import numpy as np

from degradations.files import encode_degraded
from lldif_bench.datasets.base import SkipItem, sha256_bytes
from lldif_bench.datasets.record import Record
from lldif_bench.imageio import atomic_write_bytes, image_format_of

_STATE: dict[str, Any] = {}


def init_worker(state: dict[str, Any], one_thread: bool = True) -> None:
    """Pool initializer: the dataset, preset and seed every task needs. Worker processes run one
    thread each (parallelism comes from the processes)."""
    _STATE.clear()
    _STATE.update(state)
    if one_thread:
        import torch

        torch.set_num_threads(1)


def mean_luma(img: np.ndarray) -> float:
    """Mean BT.709 luma of an sRGB-encoded uint8 image (grey: the mean), in 0..255.

    Luma is linear in R, G, B, so its mean is the weighted per-channel mean (cv2.mean: no copy)."""
    means = cv2.mean(np.ascontiguousarray(img))
    if img.shape[2] == 3:
        return 0.2126 * means[0] + 0.7152 * means[1] + 0.0722 * means[2]
    return means[0]


def decode_chunk(items: list[tuple[int, Record]]) -> list[tuple[int, np.ndarray | None, dict]]:
    """Read + decode each item, hash its source and sample its parameters."""
    ds, preset, seed = _STATE["dataset"], _STATE["preset"], _STATE["seed"]
    out = []
    for index, record in items:
        info: dict[str, Any] = {"params": preset.sample(seed, f"{ds.name}/{record.relpath}")}
        try:
            img, sha = ds.read_source(record)
        except SkipItem as skip:
            info.update(status=f"skipped:{skip.code}", detail=skip.detail)
            out.append((index, None, info))
            continue
        info.update(src_sha256=sha, height=img.shape[0], width=img.shape[1], channels=img.shape[2],
                    mean_luma_in=round(mean_luma(img), 3), flags=ds.image_flags(record, img))
        out.append((index, img, info))
    return out


def encode_chunk(jobs: list[tuple[int, str, np.ndarray, int, bool]]) -> list[tuple[int, str, float]]:
    """Encode each image in its output's format and write it atomically; return its SHA-256."""
    out_root: Path = _STATE["out"]
    results = []
    for index, relpath, img, quality, recompress in jobs:
        data = encode_degraded(img, image_format_of(relpath), quality, recompress=recompress)
        atomic_write_bytes(out_root / relpath, data)
        results.append((index, sha256_bytes(data), round(mean_luma(img), 3)))
    return results


class _Done:
    """An already computed result with the AsyncResult interface (inline mode)."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def ready(self) -> bool:
        return True

    def get(self) -> Any:
        return self._value


class InlinePool:
    """Runs tasks at once in this process; same interface as the bits of Pool we use."""

    def __init__(self, state: dict[str, Any]) -> None:
        init_worker(state, one_thread=False)

    def apply_async(self, fn: Callable, args: tuple) -> _Done:
        return _Done(fn(*args))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        _STATE.clear()


def make_pool(workers: int, state: dict[str, Any]):
    if workers <= 0:
        return InlinePool(state)
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(method).Pool(workers, initializer=init_worker, initargs=(state, True))
