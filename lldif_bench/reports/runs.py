"""Reading what the harness writes: ``runs/leaderboard.csv`` and run directories.

The harness owns the formats (``lldif_bench/training``); this module only reads them and normalises
the few things a report needs: column names, dataset keys (``rafdb``/``ferplus``/``kdef``/
``synthetic``), the condition (``clear``/``low-light``), accuracy in percent, and the LLDif variant.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pandas as pd
import yaml

from lldif_bench.errors import UserError

log = logging.getLogger(__name__)

LEADERBOARD = "leaderboard.csv"
CONDITIONS = ("clear", "low-light")
# Column spellings the harness might use -> the name reports use.
COLUMN_ALIASES = {
    "run": "run_dir", "rundir": "run_dir", "run_directory": "run_dir", "dir": "run_dir",
    "acc": "accuracy", "top1": "accuracy", "test_accuracy": "accuracy",
    "mean_class_acc": "mean_class_accuracy", "mca": "mean_class_accuracy",
    "balanced_accuracy": "mean_class_accuracy",
}
REQUIRED = ("method", "dataset", "accuracy")
DATASET_PATTERNS = (  # first match wins; matched against the lower-cased dataset name
    (re.compile(r"raf"), "rafdb"),
    (re.compile(r"fer\s*\+|ferplus|fer2013|fer_plus"), "ferplus"),
    (re.compile(r"kdef"), "kdef"),
    (re.compile(r"synth"), "synthetic"),
)
LOWLIGHT_MARK = re.compile(r"(^|[-_/ ])(ll|low-?light|lowlight|dark)([-_/ ]|$)")


def _column_name(name: str) -> str:
    key = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    return COLUMN_ALIASES.get(key, key)


def dataset_key(name: str) -> str:
    """``LL-RAF-DB`` / ``rafdb`` / ``data/raf-db/lowlight`` → ``rafdb``; unknown names stay as given."""
    low = str(name).strip().lower()
    for pattern, key in DATASET_PATTERNS:
        if pattern.search(low):
            return key
    return low


def condition_of(value: str | float | None, dataset: str = "") -> str:
    """Normalise a condition (``clear``/``low-light``); infer it from an ``LL-`` dataset name if empty."""
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip().lower()
    if text in ("clear", "clean", "normal", "bright"):
        return "clear"
    if text in ("low-light", "lowlight", "low_light", "ll", "dark"):
        return "low-light"
    if text:
        raise UserError(f"unknown condition {value!r} in the leaderboard; expected clear or low-light")
    return "low-light" if LOWLIGHT_MARK.search(str(dataset).lower()) else "clear"


def to_percent(values: pd.Series) -> pd.Series:
    """Accuracies in percent. A column whose values all lie in [0, 1] is read as fractions."""
    values = pd.to_numeric(values, errors="coerce")
    finite = values.dropna()
    if len(finite) and finite.between(0.0, 1.0).all():
        return values * 100.0
    return values


def find_key(tree, key: str):
    """First value of ``key`` anywhere in a nested dict/list (breadth-first), else ``None``."""
    queue = [tree]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            if key in node and not isinstance(node[key], (dict, list)):
                return node[key]
            queue.extend(node.values())
        elif isinstance(node, list):
            queue.extend(node)
    return None


def read_config(run_dir: Path) -> dict:
    """A run's ``config.yaml`` (empty dict when absent)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML ({err}); re-run or remove that run") from None


def read_results(run_dir: Path) -> dict:
    """A run's ``results.json``; a clear error when it is missing (unfinished run)."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise UserError(f"{path} is missing: the run has not finished (resume it with lldif-bench run --resume)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err})") from None


def _variant_of(row: pd.Series, root: Path) -> str:
    if "variant" in row and isinstance(row["variant"], str) and row["variant"].strip():
        return row["variant"].strip().upper()
    run_dir = row.get("run_dir")
    if isinstance(run_dir, str) and run_dir:
        path = Path(run_dir)
        path = path if path.is_absolute() or path.exists() else root / path
        value = find_key(read_config(path), "variant")
        if value:
            return str(value).strip().upper()
    return ""


KNOWN_DATASETS = ("rafdb", "ferplus", "kdef", "synthetic")


SYNTHETIC_CARD = "synthetic.json"  # written by the synthetic generator next to its clear images


def _key_of_root(data_root: str) -> str:
    """Dataset key of a recorded dataset root: the synthetic generator's card (in the root, or in
    the ``source`` a make-dataset copy's ``dataset.json`` names) marks synthetic data; otherwise the
    path's folder names decide."""
    root = Path(data_root)
    candidates = [root]
    card = root / "dataset.json"
    if card.is_file():
        try:
            source = json.loads(card.read_text()).get("source")
        except (json.JSONDecodeError, OSError):
            source = None
        if source:
            candidates.append(Path(str(source)))
    for cand in candidates:
        if (cand / SYNTHETIC_CARD).is_file() or (cand / "clear" / SYNTHETIC_CARD).is_file():
            return "synthetic"
    return dataset_key(str(root))


def _dataset_from_run(row: pd.Series, root: Path) -> str:
    """A row's dataset key; when its name is not recognised (e.g. RAF-DB's ``basic`` folder, or a
    demo folder), the dataset root recorded in the run's ``config.yaml`` is examined."""
    key = dataset_key(row["dataset_name"])
    run_dir = row.get("run_dir")
    if key in KNOWN_DATASETS or not isinstance(run_dir, str) or not run_dir:
        return key
    path = Path(run_dir)
    path = path if path.is_absolute() or path.exists() else root / path
    data_root = find_key(read_config(path).get("dataset", {}), "root")
    if not data_root:
        return key
    found = _key_of_root(str(data_root))
    return found if found in KNOWN_DATASETS else key


def read_leaderboard(path: str | Path) -> pd.DataFrame:
    """The leaderboard as a normalised frame.

    ``path`` is ``runs/`` or the CSV itself. Columns out: method, dataset (key), dataset_name (as
    written), condition, variant, accuracy (%), seed, run_dir, plus every other column the harness
    wrote (names lower-cased, spaces → ``_``). A missing file is a clear error.
    """
    path = Path(path)
    csv = path / LEADERBOARD if path.is_dir() else path
    if not csv.is_file():
        raise UserError(f"no leaderboard at {csv}: train something first (lldif-bench run … or lldif-bench demo)")
    frame = pd.read_csv(csv, keep_default_na=True)
    frame.columns = [_column_name(c) for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(f"{csv} lacks column(s) {', '.join(missing)}; columns found: {', '.join(frame.columns)}")
    frame["method"] = frame["method"].astype(str).str.strip().str.lower()
    frame["dataset_name"] = frame["dataset"].astype(str)
    frame["dataset"] = frame["dataset_name"].map(dataset_key)
    cond = frame["condition"] if "condition" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    frame["condition"] = [condition_of(c, d) for c, d in zip(cond, frame["dataset_name"])]
    frame["accuracy"] = to_percent(frame["accuracy"])
    if "mean_class_accuracy" in frame.columns:
        frame["mean_class_accuracy"] = to_percent(frame["mean_class_accuracy"])
    if "seed" not in frame.columns:
        frame["seed"] = pd.NA
    if "run_dir" not in frame.columns:
        frame["run_dir"] = ""
    frame["run_dir"] = frame["run_dir"].fillna("").astype(str)
    root = csv.parent
    if len(frame):
        frame["dataset"] = [_dataset_from_run(row, root) for _, row in frame.iterrows()]
    frame["variant"] = [_variant_of(row, root) for _, row in frame.iterrows()] if len(frame) else []
    bad = frame["accuracy"].isna()
    if bad.any():
        log.warning("skipped %d leaderboard row(s) without a numeric accuracy in %s", int(bad.sum()), csv)
        frame = frame[~bad]
    return frame.reset_index(drop=True)


METRICS = ("final", "best-epoch")


def apply_metric(board: pd.DataFrame, metric: str, root: str | Path) -> pd.DataFrame:
    """Set ``accuracy`` to the chosen metric: ``final`` (the leaderboard's, last epoch) or
    ``best-epoch`` (``results.json`` → ``best.accuracy``: the epoch picked on the test split, as the
    original papers report; optimistic). Rows whose run has no such number are dropped and counted."""
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if metric == "final" or not len(board):
        return board
    root = Path(root)
    root = root if root.is_dir() else root.parent
    values = []
    for run_dir in board.run_dir:
        value = None
        if run_dir:
            path = Path(run_dir)
            path = path if path.is_absolute() or path.exists() else root / path
            try:
                value = (read_results(path).get("best") or {}).get("accuracy")
            except UserError:
                value = None
        values.append(value)
    out = board.copy()
    out["accuracy"] = to_percent(pd.Series(values, index=board.index, dtype="float64"))
    lost = out["accuracy"].isna()
    if lost.any():
        log.warning("best-epoch accuracy: %d run(s) without results.json best.accuracy left out", int(lost.sum()))
    return out[~lost].reset_index(drop=True)


def resolve_run_dir(run_dir: str | Path, runs_root: str | Path | None = None) -> Path:
    """A run directory as given, or relative to ``runs_root``; clear error when it does not exist."""
    path = Path(run_dir)
    if not path.is_dir() and runs_root is not None and (Path(runs_root) / path).is_dir():
        path = Path(runs_root) / path
    if not path.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    return path
