"""The official layouts at any size, for scaling tests and ``benchmarks/bench_datasets.py``.

Each builder writes one layout with ``n`` items under the folder it is given and returns what to
pass as ``--src``. Images are tiny and drawn from a few pre-encoded variants (listing needs names,
building needs decodable files; neither needs many distinct pictures). FER+ layouts take their
names, Usage and votes from the real FER+ label files vendored in ``tests/data/ferplus/`` (MIT,
see its LICENSE.md), proportionally per split, so the full size is the real 35,887 rows / 35,710
images and the counts each protocol gives are the real ones.

``python tests/fixtures_scaled.py LAYOUT N DIR`` writes one layout from the command line.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path

import numpy as np

from lldif_bench.imageio import encode_image

FERPLUS_DATA = Path(__file__).resolve().parent / "data" / "ferplus"
FOLDERS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
KDEF_EXPRESSIONS = ("AF", "AN", "DI", "HA", "NE", "SA", "SU")
KDEF_ANGLES = ("FL", "HL", "S", "HR", "FR")

# official full sizes (shared/design/datasets.md)
FULL = {"rafdb": 15_339, "ferplus-csv": 35_887, "ferplus-folders": 35_710, "kdef": 4_900, "rafdb-folders": 15_339}
RAFDB_TRAIN = 12_271  # of 15,339


def _variants(shape: tuple[int, int, int], fmt: str, k: int = 8) -> list[bytes]:
    rng = np.random.default_rng(0)
    return [encode_image(rng.integers(40, 215, shape, dtype=np.uint8), fmt) for _ in range(k)]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _share(n: int, full_counts: list[int]) -> list[int]:
    """``n`` split over groups in proportion to ``full_counts`` (largest remainder, sums to ``n``)."""
    total = sum(full_counts)
    exact = [n * c / total for c in full_counts]
    out = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: out[i] - exact[i])[: n - sum(out)]:
        out[i] += 1
    return out


# -- RAF-DB basic -----------------------------------------------------------------------------------
def rafdb_basic(parent: Path, n: int, side: int = 24) -> Path:
    """``basic/EmoLabel/list_patition_label.txt`` + ``Image/aligned/*_aligned.jpg`` with ``n`` lines
    (train/test in RAF-DB's 12,271 : 3,068 proportion, labels 1..7 round robin)."""
    root = Path(parent) / "basic"
    n_train, n_test = _share(n, [RAFDB_TRAIN, FULL["rafdb"] - RAFDB_TRAIN])
    names = [f"train_{i:05d}.jpg" for i in range(1, n_train + 1)] + [f"test_{i:04d}.jpg" for i in range(1, n_test + 1)]
    imgs = _variants((side, side, 3), "jpg")
    for k, name in enumerate(names):
        _write(root / "Image" / "aligned" / f"{name[:-4]}_aligned.jpg", imgs[k % len(imgs)])
    text = "\n".join(f"{name} {k % 7 + 1}" for k, name in enumerate(names))
    _write(root / "EmoLabel" / "list_patition_label.txt", text.encode())
    return root


def rafdb_folders(parent: Path, n: int, side: int = 24) -> Path:
    """RAF-DB as the common mirrors ship it: ``DATASET/{train,test}/{1..7}/*.jpg`` (1-based labels)."""
    root = Path(parent) / "DATASET"
    n_train, n_test = _share(n, [RAFDB_TRAIN, FULL["rafdb"] - RAFDB_TRAIN])
    imgs = _variants((side, side, 3), "jpg")
    k = 0
    for split, count in (("train", n_train), ("test", n_test)):
        for i in range(1, count + 1):
            _write(root / split / str(k % 7 + 1) / f"{split}_{i:05d}_aligned.jpg", imgs[k % len(imgs)])
            k += 1
    return root


# -- FER2013 / FER+ ---------------------------------------------------------------------------------
def _read_gz_csv(name: str) -> list[list[str]]:
    with gzip.open(FERPLUS_DATA / name, "rt", newline="") as f:
        return [row for row in csv.reader(f) if row]


def real_fer2013new() -> tuple[list[str], list[list[str]]]:
    rows = _read_gz_csv("fer2013new.csv.gz")
    return rows[0], rows[1:]


def real_label_csvs() -> dict[str, list[list[str]]]:
    """FER+'s label.csv rows, by folder (FER2013Train, FER2013Valid, FER2013Test)."""
    return {folder: _read_gz_csv(f"{folder}_label.csv.gz") for folder in FOLDERS.values()}


def _csv_text(rows: list[list[str]], header: list[str] | None = None) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def ferplus_folders(parent: Path, n: int) -> Path:
    """FER+'s ``generate_training_data.py`` output: ``FERPlus/data/FER2013{Train,Valid,Test}/``
    with ``label.csv`` and one 48×48 grey PNG per row; ``n`` images taken from the real label.csv
    files in proportion (first rows of each), ``fer2013new.csv`` beside. Returns the clone root."""
    root = Path(parent) / "FERPlus"
    labels = real_label_csvs()
    header, new_rows = real_fer2013new()
    _write(root / "fer2013new.csv", _csv_text(new_rows, header))
    pngs = _variants((48, 48, 1), "png")
    for (folder, rows), count in zip(labels.items(), _share(n, [len(r) for r in labels.values()])):
        rows = rows[:count]
        _write(root / "data" / folder / "label.csv", _csv_text(rows))
        for k, row in enumerate(rows):
            _write(root / "data" / folder / row[0], pngs[k % len(pngs)])
    return root


def ferplus_csv(parent: Path, n: int, with_label_csv: bool = False) -> Path:
    """Kaggle's ``fer2013.csv`` (emotion,pixels,Usage; 2,304 pixel values a row) with ``n`` rows and
    FER+'s ``FERPlus/fer2013new.csv`` for the same rows (real names and votes: the first rows of each
    Usage block, in proportion). ``with_label_csv`` adds FER+'s ``FERPlus/data/*/label.csv`` for
    the images of those rows."""
    root = Path(parent)
    header, new_rows = real_fer2013new()
    blocks = {u: [r for r in new_rows if r[0] == u] for u in FOLDERS}
    chosen: list[list[str]] = []
    for (usage, rows), count in zip(blocks.items(), _share(n, [len(r) for r in blocks.values()])):
        chosen += rows[:count]
    rng = np.random.default_rng(0)
    pixel_texts = [" ".join(map(str, rng.integers(0, 256, 48 * 48).tolist())) for _ in range(16)]
    emotion_of = {i: c for i, c in enumerate((6, 3, 5, 4, 0, 1, 2, 0))}  # FER+ column -> FER2013 label
    path = root / "fer2013.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write("emotion,pixels,Usage\n")
        for k, row in enumerate(chosen):
            votes = [int(v) for v in row[2:10]]
            f.write(f"{emotion_of[int(np.argmax(votes))]},{pixel_texts[k % len(pixel_texts)]},{row[0]}\n")
    _write(root / "FERPlus" / "fer2013new.csv", _csv_text(chosen, header))
    if with_label_csv:
        names = {(r[0], r[1]) for r in chosen if r[1]}
        for folder, rows in real_label_csvs().items():
            usage = next(u for u, f in FOLDERS.items() if f == folder)
            _write(root / "FERPlus" / "data" / folder / "label.csv",
                   _csv_text([r for r in rows if (usage, r[0]) in names]))
    return root


# -- KDEF -------------------------------------------------------------------------------------------
def kdef(parent: Path, n: int, size: tuple[int, int] = (38, 28)) -> Path:
    """``KDEF_and_AKDEF/KDEF/<AF01>/AF01AFS.JPG``: ``n`` ≤ 4,900 images, 35 per subject folder (the
    last folder partly filled), folders in the order AF01…AF35, AM01…, BF01…, BM01…"""
    if n > FULL["kdef"]:
        raise ValueError(f"KDEF has at most {FULL['kdef']} images (140 folders x 35), asked for {n}")
    root = Path(parent) / "KDEF_and_AKDEF"
    folders = [f"{s}{g}{i:02d}" for s in "AB" for g in "FM" for i in range(1, 36)]
    slots = [e + a for e in KDEF_EXPRESSIONS for a in KDEF_ANGLES]
    imgs = _variants((*size, 3), "jpg")
    for k in range(n):
        folder = folders[k // 35]
        _write(root / "KDEF" / folder / f"{folder}{slots[k % 35]}.JPG", imgs[k % len(imgs)])
    return root


LAYOUTS = {"rafdb": rafdb_basic, "rafdb-folders": rafdb_folders, "ferplus-folders": ferplus_folders,
           "ferplus-csv": ferplus_csv, "kdef": kdef}
# the make-dataset subcommand (adapter) that reads each layout
ADAPTER_OF = {"rafdb": "rafdb", "rafdb-folders": "rafdb", "ferplus-folders": "ferplus", "ferplus-csv": "ferplus",
              "kdef": "kdef"}


if __name__ == "__main__":
    layout, count, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    print(LAYOUTS[layout](out, count))
