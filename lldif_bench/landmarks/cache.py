"""The per-dataset landmark file, ``DATASET_DIR/landmarks.npz``: computed once, read every epoch.

Arrays (the contract the training harness reads with plain numpy, ``allow_pickle=False``):

- ``relpath``    (N,) str — the record key, in ``dataset.records()`` (manifest) order;
- ``points``     (N, 68, 2) float32 — iBUG-68 ``(x, y)`` pixel coordinates of the stored image;
- ``confidence`` (N,) float32 — in [0, 1]; 0 for fallbacks;
- ``status``     (N,) str — ``detected``, ``whole-crop``, ``ground-truth``,
  ``fallback-mean-shape``, ``fallback-canonical-shape`` or ``unreadable`` (points NaN);
- ``image_size`` (N, 2) int32 — ``(H, W)`` of the image the points refer to (optional for readers);
- ``meta``       () str — JSON: backend, source, whole_crop, package version.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lldif_bench.errors import UserError
from lldif_bench.imageio import atomic_write_bytes

LANDMARKS_FILE = "landmarks.npz"
# A file of ground-truth points (the synthetic set's) is moved here before a backend overwrites it.
GROUND_TRUTH_FILE = "landmarks_ground_truth.npz"


@dataclass
class LandmarkTable:
    relpath: list[str]
    points: np.ndarray
    confidence: np.ndarray
    status: list[str]
    image_size: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.relpath)
        self.points = np.asarray(self.points, dtype=np.float32)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if self.points.shape != (n, 68, 2) or self.confidence.shape != (n,) or len(self.status) != n:
            raise ValueError(f"inconsistent landmark table: {n} relpaths, points {self.points.shape}, "
                             f"confidence {self.confidence.shape}, {len(self.status)} statuses")
        if self.image_size is not None:
            self.image_size = np.asarray(self.image_size, dtype=np.int32).reshape(n, 2)

    def __len__(self) -> int:
        return len(self.relpath)

    def index(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self.relpath)}

    def take(self, rows: Sequence[int]) -> LandmarkTable:
        rows = list(rows)
        return LandmarkTable([self.relpath[i] for i in rows], self.points[rows], self.confidence[rows],
                             [self.status[i] for i in rows],
                             None if self.image_size is None else self.image_size[rows], dict(self.meta))


def save_landmarks(path: str | Path, table: LandmarkTable) -> None:
    """Write ``table`` to ``path`` atomically (temporary file + rename)."""
    arrays = {
        "relpath": np.array(table.relpath, dtype=str),
        "points": table.points.astype(np.float32),
        "confidence": table.confidence.astype(np.float32),
        "status": np.array(table.status, dtype=str),
        "meta": np.array(json.dumps(table.meta, sort_keys=True)),
    }
    if table.image_size is not None:
        arrays["image_size"] = table.image_size.astype(np.int32)
    atomic_write_bytes(path, npz_bytes(arrays))


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``np.load``-able ``.npz`` with fixed zip timestamps: equal arrays give equal bytes, so a
    rebuilt dataset is byte-identical."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buf.getvalue()


def read_landmarks(path: str | Path) -> LandmarkTable:
    """Read a landmark file; a malformed one is a :class:`UserError` naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no landmark file at {path}; run `lldif-bench landmarks {path.parent} --backend auto`")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("relpath", "points") if k not in data.files]
            if missing:
                raise UserError(f"{path} lacks the array(s) {', '.join(missing)}; rebuild it with --overwrite")
            n = len(data["relpath"])
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
            return LandmarkTable(
                relpath=[str(r) for r in data["relpath"]],
                points=data["points"],
                confidence=data["confidence"] if "confidence" in data.files else np.ones(n, np.float32),
                status=[str(s) for s in data["status"]] if "status" in data.files else ["ground-truth"] * n,
                image_size=data["image_size"] if "image_size" in data.files else None,
                meta=meta,
            )
    except (ValueError, OSError, EOFError, KeyError) as err:
        raise UserError(f"{path} is not a readable landmark file ({err}); rebuild it with --overwrite") from err


def load_landmarks(root: str | Path) -> dict[str, tuple[np.ndarray, float, str]]:
    """``{relpath: (points (68, 2) float32, confidence, status)}`` from ``root/landmarks.npz``
    (``root`` may also be the file itself)."""
    root = Path(root)
    table = read_landmarks(root if root.suffix == ".npz" else root / LANDMARKS_FILE)
    return {key: (table.points[i], float(table.confidence[i]), table.status[i])
            for i, key in enumerate(table.relpath)}


def describe_landmark_file(path: str | Path) -> str:
    """One line for logs and run configs: which backend made ``path`` and how its points were found,
    e.g. ``/d/landmarks.npz: dlib, 3990 whole-crop, 10 fallback-mean-shape``."""
    table = read_landmarks(path)
    counts = Counter(table.status)
    backend = table.meta.get("backend") or (
        "ground truth, no detector" if set(counts) == {"ground-truth"} else "backend not recorded")
    return f"{path}: {backend}, " + ", ".join(f"{n} {status}" for status, n in counts.most_common())


def align_to_records(table: LandmarkTable, relpaths: Sequence[str]) -> LandmarkTable:
    """Rows of ``table`` in the order of ``relpaths``; a key it lacks is a :class:`UserError`."""
    index = table.index()
    absent = [r for r in relpaths if r not in index]
    if absent:
        raise UserError(f"the landmark file lacks {len(absent)} of {len(relpaths)} records "
                        f"(first: {absent[0]!r}); rebuild it with `lldif-bench landmarks DIR --overwrite`")
    return table.take([index[r] for r in relpaths])
