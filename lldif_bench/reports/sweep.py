"""Darkness sweep (beyond the paper): accuracy of trained runs as the test split gets darker.

The clear test split is re-darkened at each exposure level with the degradation core, exactly as
``make-dataset`` builds a low-light copy — same preset, same per-image parameters
(``preset.sample(seed, "<adapter>/<relpath>")``: white balance, highlights, shadows, noise, JPEG
quality) — except that ``exposure_ev`` is set to the swept value. JPEG sources are re-encoded at the
sampled quality as the builder does. Each image is degraded at its source resolution and then resized
to each run's input size like the harness's packed cache; landmarks are the clear split's.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lldif_bench.errors import UserError

log = logging.getLogger(__name__)
EV_KEY = "exposure_ev"
JPEG_SUFFIXES = (".jpg", ".jpeg")


def parse_ev_range(spec: str) -> list[float]:
    """``START:STOP:STEP`` (inclusive, STEP's sign taken from the direction) or ``a,b,c``.

    >>> parse_ev_range("-0.5:-2:0.5")
    [-0.5, -1.0, -1.5, -2.0]
    """
    text = spec.strip()
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step == 0:
                raise ValueError
            step = math.copysign(abs(step), stop - start) if stop != start else abs(step)
            n = math.floor((stop - start) / step + 1e-9) + 1
            values = [round(start + i * step, 6) for i in range(max(n, 1))]
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--ev {spec!r}: give START:STOP:STEP (e.g. -0.5:-5:0.5) or a comma list") from None
    if not values or len(values) > 1000:
        raise UserError(f"--ev {spec!r} gives {len(values)} exposure levels")
    return values


@dataclass
class CleanTest:
    """The clear test split at source resolution, in the packed cache's row order."""

    keys: list[str]          # "<adapter>/<relpath>", the sampling key of the builder
    images: list[np.ndarray]  # uint8 (H, W, C)
    labels: np.ndarray
    jpeg: list[bool]
    relpaths: list[str]


def load_clean_test(data_dir: str | Path) -> tuple[CleanTest, object]:
    """Decode the clear test split (unreadable items skipped and counted)."""
    from lldif_bench.datasets import open_dataset

    dataset = open_dataset(data_dir)
    records = [r for r in dataset.records() if r.split == "test"]
    if not records:
        raise UserError(f"{data_dir} has no test split")
    keys, images, labels, jpeg, relpaths, skipped = [], [], [], [], [], 0
    for rec in records:
        try:
            img = dataset.load(rec)
        except Exception as err:  # noqa: BLE001 - any unreadable item is skipped and counted
            skipped += 1
            log.debug("skip %s: %s", rec.relpath, err)
            continue
        keys.append(f"{dataset.name}/{rec.relpath}")
        images.append(img)
        labels.append(rec.label)
        jpeg.append(Path(rec.relpath).suffix.lower() in JPEG_SUFFIXES)
        relpaths.append(rec.relpath)
    if skipped:
        log.warning("darkness sweep: skipped %d unreadable test images of %s", skipped, data_dir)
    if not images:
        raise UserError(f"none of the test images of {data_dir} could be read")
    return CleanTest(keys, images, np.asarray(labels, np.int64), jpeg, relpaths), dataset


def darken(test: CleanTest, ev: float, preset, seed: int, device: str = "cpu") -> list[np.ndarray]:
    """Every test image degraded with its own sampled parameters, ``exposure_ev`` set to ``ev``."""
    import torch

    from degradations import degrade_batch_uint8
    from lldif_bench.imageio import decode_image, encode_image

    params = []
    for key in test.keys:
        p = dict(preset.sample(seed, key))
        if EV_KEY not in p:
            raise UserError(f"preset {preset.name!r} has no {EV_KEY!r} parameter to sweep")
        p[EV_KEY] = float(ev)
        params.append(p)
    by_shape: dict[tuple, list[int]] = defaultdict(list)
    for i, img in enumerate(test.images):
        by_shape[img.shape].append(i)
    out: list[np.ndarray | None] = [None] * len(test.images)
    for idx in by_shape.values():
        x = torch.from_numpy(np.stack([test.images[i] for i in idx])).permute(0, 3, 1, 2).contiguous().to(device)
        y = degrade_batch_uint8(x, [params[i] for i in idx], preset=preset).permute(0, 2, 3, 1).cpu().numpy()
        for i, img in zip(idx, y):
            img = np.ascontiguousarray(img)
            if test.jpeg[i]:
                quality = int(params[i].get("jpeg_quality") or 95)
                img = decode_image(encode_image(img, "jpg", jpeg_quality=quality))
            out[i] = img
    return out  # type: ignore[return-value]


def _resize_all(images: list[np.ndarray], size: int) -> np.ndarray:
    from lldif_bench.datasets.packed import resize_rgb  # the packed cache's resize (same pixels)

    return np.stack([resize_rgb(img, size) for img in images])


def _landmarks(data_dir, size: int, relpaths: list[str]) -> np.ndarray | None:
    """The clear split's landmarks at ``size`` (from the harness's pack), in ``relpaths`` order."""
    from lldif_bench.datasets import open_dataset
    from lldif_bench.datasets.packed import pack_dataset

    packed = pack_dataset(open_dataset(data_dir), size, progress=False)
    if packed.landmarks is None:
        return None
    index = {str(p): i for i, p in enumerate(packed.relpaths)}
    missing = [r for r in relpaths if r not in index]
    if missing:
        raise UserError(f"{len(missing)} test images of {data_dir} are not in its packed cache (e.g. {missing[0]})")
    return np.asarray(packed.landmarks[[index[r] for r in relpaths]])


def mean_class_accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    classes = np.unique(labels)
    return float(np.mean([(predictions[labels == c] == c).mean() for c in classes]))


def sweep_darkness(run_dirs: list[str | Path], data_dir: str | Path, evs: list[float], *, preset: str = "paper",
                   seed: int = 0, device: str = "auto", batch_size: int = 128) -> pd.DataFrame:
    """One row per (run, EV): run, label, method, ev, accuracy (%), mean_class_accuracy (%), n."""
    from degradations import load_preset
    from lldif_bench.reports.evaluate import infer, load_trained

    if not run_dirs:
        raise UserError("give at least one --run")
    try:
        p = load_preset(preset)
    except (KeyError, FileNotFoundError, ValueError) as err:
        raise UserError(f"preset {preset!r}: {err}") from None
    runs = [load_trained(r, device) for r in run_dirs]
    test, _ = load_clean_test(data_dir)
    landmarks = {}
    for run in runs:
        if run.image_size not in landmarks:
            landmarks[run.image_size] = _landmarks(data_dir, run.image_size, test.relpaths)
        if getattr(run.model, "needs_landmarks", False) and landmarks[run.image_size] is None:
            raise UserError(f"{run.label} needs landmarks but {data_dir} has none; run `lldif-bench landmarks`")
    rows = []
    for ev in evs:
        dark = darken(test, ev, p, seed, device=str(runs[0].device))
        resized: dict[int, np.ndarray] = {}
        for run in runs:
            if run.image_size not in resized:
                resized[run.image_size] = _resize_all(dark, run.image_size)
            # landmarks go to every method when the dataset has them, as in the harness's batches
            probs, _ = infer(run, resized[run.image_size], landmarks[run.image_size], batch_size)
            pred = probs.argmax(1)
            rows.append({"run": str(run.run_dir), "label": run.label, "method": run.method, "ev": ev,
                         "accuracy": float((pred == test.labels).mean() * 100.0),
                         "mean_class_accuracy": mean_class_accuracy(test.labels, pred) * 100.0,
                         "mean_confidence": float(probs.max(1).mean()), "n": len(pred)})
            log.info("EV %+.2f %s: %.2f%%", ev, run.label, rows[-1]["accuracy"])
    return pd.DataFrame(rows)


def sweep_series(frame: pd.DataFrame) -> dict[str, tuple[list[float], list[float]]]:
    """Plot input: one line per run, labelled ``label (run folder)`` when labels repeat."""
    series = {}
    dup = frame.groupby("label")["run"].nunique()
    for run, sub in frame.groupby("run", sort=False):
        label = sub["label"].iloc[0]
        name = f"{label} ({Path(run).name})" if dup[label] > 1 else label
        series[name] = (sub["ev"].tolist(), sub["accuracy"].tolist())
    return series
