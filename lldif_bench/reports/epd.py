"""LLDif's EPD diagnostics across runs: one row per LLDif run, from its ``results.json`` (issue 17).

The columns make a collapsed prior visible at a glance: the spread of Ẑ against Z's, the label
information in each (leave-one-out nearest-centroid accuracy), and the label-free LLformer's test
accuracy fed its own Ẑ, the teacher's Z and another image's Ẑ (see
:mod:`lldif_bench.models.lldif.diagnostics`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

COLUMNS = {  # results.json diagnostics key -> column
    "epd_s1_oracle_acc": "acc fed Z (%)",
    "epd_acc_zhat": "acc fed Ẑ (%)",
    "epd_acc_zhat_shuffled": "acc fed shuffled Ẑ (%)",
    "epd_centroid_acc_z": "centroid acc Z (%)",
    "epd_centroid_acc_zhat": "centroid acc Ẑ (%)",
    "epd_spread_z": "spread Z",
    "epd_spread_zhat": "spread Ẑ",
    "epd_kl": "KL(Z‖Ẑ)",
    "epd_cos": "cos(Z, Ẑ)",
}
log = logging.getLogger(__name__)
PERCENT = {k for k, v in COLUMNS.items() if v.endswith("(%)")}


def epd_table(runs_dir: str | Path) -> pd.DataFrame:
    """Every run under ``runs_dir`` whose results.json has diagnostics: stage-1 oracle accuracy (end of
    stage 1) and the final stage's figures; ``collapsed`` when Ẑ's spread is under a tenth of Z's."""
    runs_dir = Path(runs_dir)
    if runs_dir.is_file():  # `report --runs` also takes the leaderboard CSV itself
        runs_dir = runs_dir.parent
    rows, unreadable = [], []
    for path in sorted(runs_dir.glob("*/results.json")):
        try:
            results = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            unreadable.append(path)
            continue
        diag = results.get("diagnostics") or {}
        final = diag.get(results.get("stage", ""), {})
        if not final:
            continue
        row = {"run": path.parent.name, "accuracy (%)": round(100 * results["final"]["accuracy"], 2),
               "stage-1 oracle acc (%)": round(100 * diag.get("1", {}).get("epd_s1_oracle_acc", float("nan")), 2)}
        for key, column in COLUMNS.items():
            value = final.get(key, float("nan"))
            row[column] = round(100 * value, 2) if key in PERCENT else round(value, 4)
        row["collapsed"] = "YES" if final.get("epd_collapsed") else "no"
        rows.append(row)
    if unreadable:
        log.warning("EPD table: %d unreadable results.json left out (first: %s)", len(unreadable), unreadable[0])
    return pd.DataFrame(rows)
