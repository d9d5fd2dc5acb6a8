"""Compute a dataset's landmarks once and store them beside it (``landmarks.npz`` + dataset.json)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lldif_bench import __version__
from lldif_bench.errors import UserError
from lldif_bench.imageio import atomic_write_bytes
from lldif_bench.landmarks.backends import BACKENDS, build_backend
from lldif_bench.landmarks.cache import (
    GROUND_TRUTH_FILE,
    LANDMARKS_FILE,
    LandmarkTable,
    read_landmarks,
    save_landmarks,
)
from lldif_bench.landmarks.fallback import MISSED, fill_misses

log = logging.getLogger(__name__)

SOURCES = ("lowlight", "clear")
UNREADABLE = "unreadable"


# Adapters whose images are aligned face crops, for datasets that predate the ``aligned_faces``
# attribute: RAF-DB's "aligned" images and FER2013/FERPlus' 48×48 crops.
ALIGNED_ADAPTERS = {"ferplus": None, "rafdb": ("images", "aligned")}


def default_whole_crop(dataset: Any) -> bool:
    """The dataset's ``aligned_faces`` attribute, else whether its adapter is a known aligned one."""
    flag = getattr(dataset, "aligned_faces", None)
    if flag is not None:
        return bool(flag)
    name = getattr(dataset, "name", None)
    if name not in ALIGNED_ADAPTERS:
        return False
    need = ALIGNED_ADAPTERS[name]
    return need is None or getattr(dataset, need[0], need[1]) == need[1]


def _root_of(dataset: Any) -> Path | None:
    root = getattr(dataset, "root", None)
    return Path(root) if root is not None else None


def _image_source(dataset: Any, source: str, clear_dataset: Any):
    """The dataset whose pixels the points come from, and a relpath → record lookup into it."""
    if source not in SOURCES:
        raise UserError(f"--source must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "lowlight":
        return dataset, None
    if clear_dataset is None:
        raise UserError("--source clear needs the clear (source) dataset: pass --clear-dir DIR")
    lookup: dict[str, Any] = {}
    for rec in clear_dataset.records():
        lookup.setdefault(rec.relpath, rec)
        lookup.setdefault(os.path.splitext(rec.relpath)[0], rec)
    return clear_dataset, lookup


def _protect_ground_truth(path: Path, backend: str) -> None:
    """Before a detector's points replace a ground-truth file, keep the truth beside it."""
    if backend == "synthetic" or not path.is_file():
        return
    try:
        table = read_landmarks(path)
    except UserError:
        return
    backup = path.with_name(GROUND_TRUTH_FILE)
    if len(table) and all(s == "ground-truth" for s in table.status) and not backup.exists():
        atomic_write_bytes(backup, path.read_bytes())
        log.info("kept the ground-truth landmarks as %s", backup)


def update_dataset_card(out_dir: Path, entry: dict) -> bool:
    """Merge ``{"landmarks": entry}`` into ``out_dir/dataset.json`` if that card exists."""
    card = out_dir / "dataset.json"
    if not card.is_file():
        return False
    try:
        data = json.loads(card.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{card} is not valid JSON ({err}); cannot record the landmark settings") from err
    data["landmarks"] = entry
    atomic_write_bytes(card, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode())
    return True


def extract_landmarks_for_dataset(out_dir: Path, dataset: Any, backend: str = "auto", source: str = "lowlight",
                                  clear_dataset: Any = None, whole_crop: bool | None = None, *,
                                  device: str = "auto", batch_size: int = 64, overwrite: bool = True,
                                  progress: bool = True) -> dict:
    """Detect 68 landmarks for every record of ``dataset`` and write ``out_dir/landmarks.npz``.

    ``source="lowlight"`` (default) reads ``dataset``'s own images (what a deployed model sees);
    ``"clear"`` reads the same relpaths from ``clear_dataset``. ``whole_crop=None`` takes the
    dataset's ``aligned_faces`` attribute (aligned crops defeat face detectors), see
    :func:`default_whole_crop`. Detector misses get the mean-shape fallback. An unreadable image
    keeps its row with NaN points and status ``unreadable``. ``overwrite=False`` refuses to replace
    an existing file. Returns the summary that is also recorded in ``out_dir/dataset.json``.
    """
    BACKENDS.get(backend)  # an unknown name fails first, listing the registered ones
    out_dir = Path(out_dir)
    target = out_dir / LANDMARKS_FILE
    if target.exists() and not overwrite:
        raise UserError(f"{target} exists; pass --overwrite to recompute it")
    records = list(dataset.records())
    if not records:
        raise UserError(f"the dataset at {out_dir} has no records; nothing to extract landmarks for")
    if whole_crop is None:
        whole_crop = default_whole_crop(dataset)
    image_ds, lookup = _image_source(dataset, source, clear_dataset)
    search_dirs = [p for p in (out_dir, _root_of(dataset), _root_of(clear_dataset)) if p is not None]
    resolved = build_backend(backend, device=device, whole_crop=whole_crop, search_dirs=search_dirs)

    n = len(records)
    relpaths = [r.relpath for r in records]
    points = np.full((n, 68, 2), np.nan, dtype=np.float32)
    confidence = np.zeros(n, dtype=np.float32)
    status = [MISSED] * n
    sizes = np.zeros((n, 2), dtype=np.int32)
    load_errors: list[str] = []
    started = time.perf_counter()
    bar = tqdm(total=n, desc=f"landmarks ({resolved.used})", unit="img", disable=not progress)
    for start in range(0, n, batch_size):
        rows, images = [], []
        for i in range(start, min(start + batch_size, n)):
            rec = records[i]
            if lookup is not None:
                rec = lookup.get(rec.relpath) or lookup.get(os.path.splitext(rec.relpath)[0])
            try:
                if rec is None:
                    raise UserError("not in the clear dataset")
                image = image_ds.load(rec)
            except (UserError, OSError, ValueError) as err:
                status[i] = UNREADABLE
                load_errors.append(f"{relpaths[i]}: {err}")
                continue
            sizes[i] = image.shape[:2]
            rows.append(i)
            images.append(image)
        if images:
            p, c, s = resolved.backend.detect(images, whole_crop, keys=[relpaths[i] for i in rows])
            for k, i in enumerate(rows):
                points[i], confidence[i], status[i] = p[k], c[k], s[k]
        bar.update(min(batch_size, n - start))
    bar.close()
    seconds = time.perf_counter() - started

    misses = sum(1 for s in status if s == MISSED)
    readable = n - len(load_errors)
    if resolved.used == "synthetic" and readable and misses == readable:
        raise UserError("none of this dataset's records is in the synthetic ground-truth file; "
                        "is this a synthetic dataset?")
    if resolved.used == "synthetic" and misses:
        log.warning("%d records have no ground-truth points; they get the mean-shape fallback", misses)
    if load_errors:
        log.warning("%d images could not be read; their rows are kept with status %r (first: %s)",
                    len(load_errors), UNREADABLE, load_errors[0])
    fallbacks = fill_misses(points, confidence, status, sizes)
    counts = dict(Counter(status))
    summary = {
        "file": LANDMARKS_FILE,
        "backend": resolved.used,
        "requested_backend": resolved.requested,
        "notes": resolved.notes,
        "source": source,
        "whole_crop": whole_crop,
        "num_images": n,
        "counts": counts,
        "detector_misses": misses,
        "miss_rate": misses / readable if readable else 0.0,
        "fallbacks": fallbacks,
        "unreadable": len(load_errors),
        "seconds": round(seconds, 3),
        "landmarks_per_s": round(readable / seconds, 2) if seconds > 0 else None,
        "package_version": __version__,
    }
    summary["settings"] = dict(getattr(resolved.backend, "settings", {}))
    meta = {k: summary[k] for k in ("backend", "requested_backend", "source", "whole_crop", "settings",
                                    "package_version")}
    _protect_ground_truth(target, resolved.used)
    save_landmarks(target, LandmarkTable(relpaths, points, confidence, status, sizes, meta))
    update_dataset_card(out_dir, {k: v for k, v in summary.items() if k not in ("seconds", "landmarks_per_s")})
    return summary
