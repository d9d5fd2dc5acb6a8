"""manifest.csv: one row per source item (output path, label, split, every sampled parameter,
source/output SHA-256, status ``ok`` or ``skipped:<reason>``), plus the journal an unfinished build
appends to. Values are stored as canonical strings, so a journal, a shard part and the final CSV
serialise to the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lldif_bench.imageio import atomic_write_bytes

BASE_COLUMNS = ("index", "key", "source", "output", "split", "label", "class_name", "native_label", "subject",
                "angle", "status", "detail", "src_sha256", "dst_sha256", "height", "width", "channels",
                "mean_luma_in", "mean_luma_out", "flags")
PARAM_PREFIX = "param."
# a skip the user asked for (``make-dataset kdef --exclude-anomalies``): recorded, but --strict allows it
EXCLUDED_ANOMALY = "excluded-anomaly"


def canonical(value: Any) -> str:
    """One text form per value: floats as shortest round-trip repr, containers as sorted JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    if hasattr(value, "item"):  # numpy scalar
        return canonical(value.item())
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def make_row(fields: dict[str, Any], params: dict[str, Any] | None) -> dict[str, str]:
    row = {c: canonical(fields.get(c)) for c in BASE_COLUMNS}
    for name, value in sorted((params or {}).items()):
        row[PARAM_PREFIX + name] = canonical(value)
    return row


def columns_of(rows: Iterable[dict[str, str]]) -> list[str]:
    params = sorted({k for r in rows for k in r if k.startswith(PARAM_PREFIX)})
    return list(BASE_COLUMNS) + params


def rows_to_csv(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns_of(rows), lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    atomic_write_bytes(path, rows_to_csv(sorted(rows, key=lambda r: int(r["index"]))))


def read_manifest(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [dict(row) for row in csv.DictReader(f)]


def append_journal(f, rows: list[dict[str, str]]) -> None:
    for row in rows:
        f.write(json.dumps(row, sort_keys=True) + "\n")
    f.flush()


def read_journal(path: Path) -> list[dict[str, str]]:
    """Rows of a journal; a torn last line (the run was killed mid-write) is ignored."""
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
