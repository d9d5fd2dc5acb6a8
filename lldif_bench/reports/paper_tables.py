"""The LLDif paper's reported accuracies for Tables 1–5, as data (``paper_reference.csv``).

These numbers are **reported by the paper**; the suite shows them only as a reference column next to
our own results and never uses them as a result. Every cell is checked against the paper's text by
``tests/test_reports_paper_reference.py``.

Keys: ``method`` is the suite's method name (``lldif`` for the paper's "Ours"); ``dataset`` one of
``rafdb``, ``ferplus``, ``kdef``; ``condition`` ``clear`` (Table 1) or ``low-light`` (Tables 2–5);
``variant`` is set only for Table 5 (V1–V4). Table 5's dataset is not named in the paper: its V4 row
equals Table 4's LL-KDEF headline (92.97), so LL-KDEF is inferred and the row's ``note`` says so.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

SOURCE = "reported by the paper"
CITATION = "LLDif: Diffusion Models for Low-light Emotion Recognition (Wang, Zhang & Sankaranarayanan)"

TABLE_TITLES = {
    1: "Accuracy (%) vs SOTA FER methods on RAF-DB, KDEF and FERPlus (clear)",
    2: "Accuracy (%) vs SOTA FER methods on LL-RAF-DB",
    3: "Accuracy (%) vs SOTA FER methods on LL-FERPlus",
    4: "Accuracy (%) vs SOTA FER methods on LL-KDEF",
    5: "Key components in LLDif (ablation V1–V4; LL-KDEF inferred)",
}

# The paper's method labels (citation stripped) -> the suite's method names.
PAPER_NAMES = {
    "ARM": "arm", "POSTER++": "posterpp", "RUL": "rul", "DAN": "dan", "SCN": "scn", "EAC": "eac",
    "MANet": "manet", "DACL": "dacl", "Ours": "lldif",
}

# Table 5's variant definitions, as the paper's check marks give them.
ABLATION_COMPONENTS = {
    "V1": {"diffusion_model": False, "loss": "ce", "insert_noise": False},
    "V2": {"diffusion_model": True, "loss": "total", "insert_noise": True},
    "V3": {"diffusion_model": True, "loss": "ce", "insert_noise": False},
    "V4": {"diffusion_model": True, "loss": "ce", "insert_noise": True},
}


@lru_cache(maxsize=1)
def _load() -> pd.DataFrame:
    with resources.files(__package__).joinpath("paper_reference.csv").open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, dtype={"variant": str, "note": str}, keep_default_na=False)
    frame["accuracy"] = frame["accuracy"].astype(float)
    frame["source"] = SOURCE
    return frame


def paper_reference() -> pd.DataFrame:
    """Every reported cell: table, method, paper_label, dataset, condition, variant, accuracy, note,
    source (always "reported by the paper"). A copy: callers may modify it."""
    return _load().copy()


def paper_accuracy(table: int, method: str, dataset: str, condition: str, variant: str = "") -> float | None:
    """The paper's accuracy (%) for one cell, or ``None`` when the paper does not report it."""
    ref = _load()
    hit = ref[(ref.table == table) & (ref.method == method) & (ref.dataset == dataset)
              & (ref.condition == condition) & (ref.variant == variant)]
    return float(hit.accuracy.iloc[0]) if len(hit) else None


def reported_accuracy(method: str, dataset: str, condition: str, variant: str = "") -> float | None:
    """The paper's accuracy for a (method, dataset, condition[, variant]) from whichever table has it."""
    ref = _load()
    hit = ref[(ref.method == method) & (ref.dataset == dataset) & (ref.condition == condition)
              & (ref.variant == variant)]
    return float(hit.accuracy.iloc[0]) if len(hit) else None
