"""``runs/leaderboard.csv``: one row per finished run, appended under a file lock."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path

from filelock import FileLock

COLUMNS = ("method", "dataset", "condition", "accuracy", "mean_class_accuracy", "epochs", "seed", "params",
           "run_dir", "date")


def append_row(path: str | Path, row: Mapping[str, object], timeout: float = 60.0) -> None:
    """Append ``row`` (keys = :data:`COLUMNS`) to the CSV at ``path``, writing the header first if new.

    The lock (``path.lock``) serialises concurrent runs; each row goes out in one ``write`` + fsync,
    so a reader never sees half a row.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise ValueError(f"leaderboard row lacks {', '.join(missing)}")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    with FileLock(str(path) + ".lock", timeout=timeout):
        new = not path.is_file() or path.stat().st_size == 0
        if new:
            writer.writerow(COLUMNS)
        writer.writerow([row[c] for c in COLUMNS])
        with open(path, "a", newline="") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
