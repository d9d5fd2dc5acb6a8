"""Label-free inference with a finished run: images or folders → path, predicted emotion, probabilities."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from lldif_bench.datasets.packed import resize_rgb
from lldif_bench.device import resolve_device
from lldif_bench.errors import UserError
from lldif_bench.imageio import ImageDecodeError, is_image_name, read_image
from lldif_bench.training import checkpoint as ckpt
from lldif_bench.training.augment import normalize
from lldif_bench.training.config import RunConfig, load_yaml

log = logging.getLogger(__name__)


def load_run(run_dir: str | Path, weights: str = "last", device: str = "auto") -> tuple[nn.Module, RunConfig, list[str]]:
    """The trained method of ``run_dir`` (``weights`` = ``last`` or ``best``), its config and class names."""
    import yaml

    from lldif_bench.training.engine import build_method, enter_stage, method_stages

    run_dir = Path(run_dir)
    cfg_file = run_dir / "config.yaml"
    if not cfg_file.is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.yaml); pass the folder `lldif-bench run` made")
    doc = yaml.safe_load(cfg_file.read_text())
    cfg = RunConfig.from_dict(load_yaml(cfg_file), str(cfg_file))
    cfg.pretrained = "scratch"  # the checkpoint replaces every weight; do not re-read the init file
    class_names = list(doc["dataset"]["class_names"])
    weights_file = run_dir / "checkpoints" / f"{weights}.safetensors"
    if not weights_file.is_file():
        raise UserError(f"{weights_file} does not exist; has the run finished? (`lldif-bench run --resume` continues it)")
    from lldif_bench.methods import load_all_methods

    model = build_method(cfg, len(class_names), int(doc["dataset"]["num_train"]))
    for stage in method_stages(load_all_methods().get(cfg.method)):
        enter_stage(model, stage["name"])
    ckpt.load_weights(model, weights_file)
    return model.to(resolve_device(device)).eval(), cfg, class_names


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named directly, plus every image under named folders (sorted)."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and is_image_name(f) and ".cache" not in f.parts))
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"{p} is neither an image file nor a folder")
    if not out:
        raise UserError("no images found in " + ", ".join(map(str, inputs)))
    return out


def _landmarks_for(images: list[np.ndarray], backend_name: str, device: str, size: int) -> np.ndarray:
    try:
        from lldif_bench.landmarks.backends import build_backend
        from lldif_bench.landmarks.fallback import canonical_shape_in_crop
    except ImportError as err:
        raise UserError(f"this method needs landmarks, but the landmark backends cannot be imported ({err})") from None
    backend = build_backend(backend_name, device=device, whole_crop=True).backend
    points, _, _ = backend.detect(images, True)
    scale = np.array([[size / img.shape[1], size / img.shape[0]] for img in images], dtype=np.float32)
    points = points * scale[:, None, :]
    bad = ~np.isfinite(points).all(axis=(1, 2))
    points[bad] = canonical_shape_in_crop(size, size)
    if bad.any():
        log.warning("%d images got no landmarks; using the canonical mean shape for them", int(bad.sum()))
    return points


@torch.no_grad()
def predict_images(run_dir: str | Path, inputs: Sequence[str | Path], *, landmarks: str | None = None,
                   device: str = "auto", batch_size: int = 64, weights: str = "last") -> pd.DataFrame:
    """One row per readable image: ``path``, ``prediction`` and ``p_<class>`` columns. Unreadable
    images are skipped and counted in the log; a method needing landmarks runs ``landmarks`` (a
    backend name, default ``auto``)."""
    model, cfg, class_names = load_run(run_dir, weights, device)
    dev = next(model.parameters()).device
    size = cfg.image_size
    paths = expand_inputs(inputs)
    needs_lm = bool(getattr(model, "needs_landmarks", False))
    rows: list[tuple[str, np.ndarray]] = []
    skipped: list[str] = []
    for start in range(0, len(paths), batch_size):
        chunk, images = [], []
        for p in paths[start:start + batch_size]:
            try:
                images.append(read_image(p))
                chunk.append(p)
            except (ImageDecodeError, OSError) as err:
                skipped.append(f"{p}: {err}")
        if not images:
            continue
        x = torch.from_numpy(np.stack([resize_rgb(im, size) for im in images])).to(dev)
        x = normalize(x.permute(0, 3, 1, 2).float() / 255.0)
        lm = None
        if needs_lm:
            lm = torch.from_numpy(_landmarks_for(images, landmarks or "auto", str(dev), size)).to(dev)
        probs = F.softmax(model.predict(x, lm).float(), dim=1).cpu().numpy()
        rows.extend(zip([str(p) for p in chunk], probs))
    if skipped:
        log.warning("skipped %d unreadable images (e.g. %s)", len(skipped), skipped[0])
    if not rows:
        raise UserError("none of the images could be read")
    probs = np.stack([r[1] for r in rows])
    df = pd.DataFrame({"path": [r[0] for r in rows], "prediction": [class_names[i] for i in probs.argmax(1)]})
    for i, name in enumerate(class_names):
        df[f"p_{name}"] = probs[:, i].round(6)
    return df
