"""Inputs of the figures, read from files: predictions CSVs, feature/EPD ``.npz`` files, T-sweeps.

File formats (what the figure commands accept, and what :mod:`lldif_bench.reports.evaluate` writes):

- ``predictions.csv`` (the harness's): ``path, label, prediction`` and one probability column per
  class (``prob_<class>``/``p_<class>``/``<class>``); labels may be indices or emotion names.
- features ``.npz``: ``features (N, D)``, ``labels (N,)``; optional ``method``, ``condition`` strings.
- EPD steps ``.npz`` (Fig. 7): ``steps (S,)`` ints, ``embeddings (S, N, C)``, ``labels (N,)``.
- iterations CSV (Fig. 8): ``iterations, accuracy`` (accuracy in % or as a fraction).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from lldif_bench.emotions import ALIASES, CANONICAL_8
from lldif_bench.errors import UserError
from lldif_bench.reports.figures import ConfidenceSet, FeaturePanel
from lldif_bench.reports.runs import to_percent

PROB_PREFIX = re.compile(r"^(prob(ability)?|p)[_\-: ]?", re.IGNORECASE)


def _class_index(value) -> int:
    if isinstance(value, (int, np.integer)) or (isinstance(value, str) and value.strip().isdigit()):
        return int(value)
    if isinstance(value, float) and float(value).is_integer():
        return int(value)
    name = str(value).strip().lower()
    if name in ALIASES:
        return CANONICAL_8.index(ALIASES[name])
    raise UserError(f"unknown class label {value!r} in predictions")


def probability_columns(columns) -> list[str]:
    """The per-class probability columns of a predictions frame, in canonical class order."""
    found: dict[int, str] = {}
    for col in columns:
        name = PROB_PREFIX.sub("", str(col)).strip().lower()
        if name in ALIASES and col not in ("label", "prediction"):
            found.setdefault(CANONICAL_8.index(ALIASES[name]), col)
    return [found[k] for k in sorted(found)]


def read_predictions(path: str | Path) -> pd.DataFrame:
    """A predictions CSV with integer ``label``/``prediction`` and a ``confidence`` column added."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"predictions file {path} does not exist")
    frame = pd.read_csv(path)
    for col in ("label", "prediction"):
        if col not in frame.columns:
            raise UserError(f"{path} lacks a {col!r} column; columns: {', '.join(map(str, frame.columns))}")
    frame["label"] = [_class_index(v) for v in frame["label"]]
    frame["prediction"] = [_class_index(v) for v in frame["prediction"]]
    if "confidence" not in frame.columns:
        probs = probability_columns(frame.columns)
        if not probs:
            raise UserError(f"{path} has neither a confidence column nor per-class probability columns")
        frame["confidence"] = frame[probs].to_numpy(dtype=np.float64).max(axis=1)
    return frame


def confidence_set(path: str | Path, method: str, condition: str) -> ConfidenceSet:
    frame = read_predictions(path)
    return ConfidenceSet(method, condition, frame["confidence"].to_numpy(np.float64),
                         (frame["label"] == frame["prediction"]).to_numpy())


def _npz(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (ValueError, OSError) as err:
        raise UserError(f"{path} is not a readable .npz file ({err})") from None


def _require(data: dict, keys: tuple[str, ...], path) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise UserError(f"{path} lacks array(s) {', '.join(missing)}; found {', '.join(data) or 'none'}")


def feature_panel(path: str | Path, method: str | None = None, condition: str | None = None) -> FeaturePanel:
    """A features ``.npz`` as a t-SNE panel; ``method``/``condition`` override the stored names."""
    data = _npz(path)
    _require(data, ("features", "labels"), path)
    feats, labels = np.asarray(data["features"]), np.asarray(data["labels"]).astype(int)
    if len(feats) != len(labels):
        raise UserError(f"{path}: {len(feats)} feature rows but {len(labels)} labels")
    method = method or str(data.get("method", Path(path).stem))
    condition = condition or str(data.get("condition", ""))
    return FeaturePanel(method, condition, feats.reshape(len(feats), -1), labels)


def save_features(path: str | Path, features: np.ndarray, labels: np.ndarray, method: str, condition: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, features=np.asarray(features, np.float32), labels=np.asarray(labels, np.int64),
                        method=np.array(method), condition=np.array(condition))
    return path


def read_step_embeddings(path: str | Path) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Fig. 7 input: ``{step: (N, C)}`` and labels."""
    data = _npz(path)
    _require(data, ("steps", "embeddings", "labels"), path)
    steps, emb, labels = data["steps"].astype(int), np.asarray(data["embeddings"]), data["labels"].astype(int)
    if emb.ndim != 3 or emb.shape[0] != len(steps) or emb.shape[1] != len(labels):
        raise UserError(f"{path}: embeddings must be (steps={len(steps)}, N={len(labels)}, C), got {emb.shape}")
    return {int(s): emb[i] for i, s in enumerate(steps)}, labels


def save_step_embeddings(path: str | Path, embeddings: dict[int, np.ndarray], labels: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = sorted(embeddings)
    np.savez_compressed(path, steps=np.asarray(steps, np.int64),
                        embeddings=np.stack([np.asarray(embeddings[s], np.float32) for s in steps]),
                        labels=np.asarray(labels, np.int64))
    return path


def read_iterations(path: str | Path) -> tuple[list[int], list[float]]:
    """Fig. 8 input: a CSV with ``iterations`` and ``accuracy`` columns (accuracy returned in %)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    frame = pd.read_csv(path)
    cols = {c.strip().lower(): c for c in frame.columns}
    it_col = cols.get("iterations") or cols.get("t") or cols.get("steps")
    if it_col is None or "accuracy" not in cols:
        raise UserError(f"{path} needs columns iterations and accuracy; found {', '.join(frame.columns)}")
    return [int(v) for v in frame[it_col]], [float(v) for v in to_percent(frame[cols["accuracy"]])]
