"""Tiny fake datasets in the exact official layouts (shared/design/datasets.md §1.6, §2.6, §3.5).

Importable by any test as ``from fixtures_datasets import make_rafdb`` (pytest puts ``tests/`` on
sys.path for test files; scripts insert it themselves, see benchmarks/bench_make_dataset.py). Every builder writes under the folder it is given and returns the path to pass as ``--src``.
Images carry their label in their colour (hue = label / 7) plus a little noise, so a tiny model can
learn them.
"""

from __future__ import annotations

import colorsys
import csv
import hashlib
from pathlib import Path

import numpy as np

from lldif_bench.imageio import encode_image

KDEF_EXPRESSIONS = ("AF", "AN", "DI", "HA", "NE", "SA", "SU")
KDEF_ANGLES = ("FL", "HL", "S", "HR", "FR")
FERPLUS_HEADER = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust",
                  "fear", "contempt", "unknown", "NF"]
USAGES = ("Training", "PublicTest", "PrivateTest")


def label_image(label: int, h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    """A uint8 (H, W, C) image whose colour encodes ``label`` (hue label/7), with mild noise."""
    rng = np.random.default_rng(seed)
    r, g, b = colorsys.hsv_to_rgb((label % 8) / 7.0, 0.6, 0.85)
    base = np.array([r, g, b]) * 255.0
    yy = np.linspace(-20, 20, h)[:, None, None]
    img = base[None, None, :] + yy + rng.normal(0, 6, (h, w, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    if channels == 1:
        return img.mean(axis=2, keepdims=True).astype(np.uint8)
    return img


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def jpeg(img: np.ndarray) -> bytes:
    return encode_image(img, "jpg", jpeg_quality=92)


# -- RAF-DB -------------------------------------------------------------------------------------
def rafdb_lines() -> list[str]:
    lines = [f"train_{i:05d}.jpg {(i - 1) // 2 + 1}" for i in range(1, 15)]
    return lines + [f"test_{i:04d}.jpg {i}" for i in range(1, 8)]


def make_rafdb(parent: Path, *, folder: str = "basic", newline: str = "\n", final_newline: bool = False,
               label_name: str = "list_patition_label.txt", original: bool = True) -> Path:
    """RAF-DB basic with 14 train (2 per class) and 7 test lines; returns the ``basic`` folder."""
    root = Path(parent) / folder
    lines = rafdb_lines()
    text = newline.join(lines) + (newline if final_newline else "")
    write(root / "EmoLabel" / label_name, text.encode())
    write(root / "README.txt", b"Real-world Affective Faces (RAF) Database\n")
    for k, line in enumerate(lines):
        name, label = line.split()
        stem = name[:-4]
        write(root / "Image" / "aligned" / f"{stem}_aligned.jpg", jpeg(label_image(int(label) - 1, 100, 100, k)))
        if original:
            write(root / "Image" / "original" / name, jpeg(label_image(int(label) - 1, 150, 120, 100 + k)))
            write(root / "Annotation" / "manual" / f"{stem}_manu_attri.txt",
                  b"30.1\t40.2\n70.3\t40.4\n50.0\t60.0\n35.5\t80.1\n65.2\t80.3\n1\n0\n2\n")
            write(root / "Annotation" / "boundingbox" / f"{stem}_boundingbox.txt", b"10.0 12.0 110.0 140.0\n")
    return root


# -- FER2013 / FERPlus --------------------------------------------------------------------------
def fer_rows() -> list[tuple[int, str, np.ndarray]]:
    """21 rows: for each Usage one row per FER2013 label 0..6 (emotion, usage, 48x48 pixels)."""
    rows = []
    for u, usage in enumerate(USAGES):
        for label in range(7):
            rows.append((label, usage, label_image(label, 48, 48, 1000 + 7 * u + label, channels=1)[:, :, 0]))
    return rows


def ferplus_votes() -> list[tuple[str, list[int]]]:
    """(image name, 10 votes) per row of :func:`fer_rows`, with the tricky cases of §2.6."""
    out = []
    for i in range(21):
        label = i % 7  # FER2013 order angry..neutral -> put most votes on the matching FER+ column
        col = {0: 4, 1: 5, 2: 6, 3: 1, 4: 3, 5: 2, 6: 0}[label]
        votes = [0] * 10
        votes[col] = 8
        votes[(col + 1) % 8] = 2
        out.append((f"fer{i:07d}.png", votes))
    out[1] = ("", [0] * 9 + [10])  # Training: empty name, non-face
    out[2] = ("fer0000002.png", [3, 3, 2, 0, 0, 0, 0, 0, 2, 0])  # no majority (plurality: neutral)
    out[3] = ("fer0000003.png", [1, 0, 0, 0, 0, 0, 0, 8, 1, 0])  # contempt wins
    out[6] = ("fer0000004.png", out[6][1])  # a later Training row repeats row 4's name (later wins)
    out[10] = ("fer0000099.png", out[10][1])  # a name whose number differs from the row index
    return out


def make_fer(parent: Path, *, icml: bool = False, header_2016: bool = False, label_csv: bool = False,
             crlf: bool = False) -> Path:
    """``fer2013/fer2013.csv`` (or ``icml_face_data.csv``) + ``FERPlus/fer2013new.csv`` (+ label.csv)."""
    root = Path(parent)
    nl = "\r\n" if crlf else "\n"
    rows = fer_rows()
    if icml:
        text = "emotion, Usage, pixels" + nl + "".join(
            f"{e},{u},{' '.join(map(str, p.ravel()))}{nl}" for e, u, p in rows)
        write(root / "icml_face_data.csv", text.encode())
    else:
        text = "emotion,pixels,Usage" + nl + "".join(
            f"{e},{' '.join(map(str, p.ravel()))},{u}{nl}" for e, u, p in rows)
        write(root / "fer2013" / "fer2013.csv", text.encode())
    votes = ferplus_votes()
    header = FERPLUS_HEADER if not header_2016 else [h for h in FERPLUS_HEADER if h != "Image name"]
    lines = [",".join(header)]
    for (_, usage, _), (name, v) in zip(rows, votes):
        fields = [usage] + ([name] if not header_2016 else []) + [str(x) for x in v]
        lines.append(",".join(fields))
    write(root / "FERPlus" / "fer2013new.csv", ("\n".join(lines) + "\n").encode())
    if label_csv:
        write_label_csvs(root / "FERPlus" / "data", rows, votes, with_images=False)
    return root


def write_label_csvs(data: Path, rows, votes, *, with_images: bool) -> None:
    """FER+'s generate_training_data.py rule: row order, skip empty names, later duplicate wins.
    One row's votes differ from fer2013new.csv (fer0000000.png: label.csv says happiness)."""
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    per_folder: dict[str, dict[str, list[int]]] = {f: {} for f in folders.values()}
    images: dict[str, np.ndarray] = {}
    for (_, usage, pixels), (name, v) in zip(rows, votes):
        if not name:
            continue
        folder = folders[usage]
        per_folder[folder][name] = list(v)
        images[f"{folder}/{name}"] = pixels
    per_folder["FER2013Train"]["fer0000000.png"] = [0, 9, 0, 0, 1, 0, 0, 0, 0, 0]
    for folder, entries in per_folder.items():
        buf = []
        for name, v in entries.items():
            buf.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, v)))
        write(data / folder / "label.csv", ("\n".join(buf) + "\n").encode())
    if with_images:
        for rel, pixels in images.items():
            write(data / rel, encode_image(pixels[:, :, None], "png"))


def make_ferplus_images(parent: Path) -> Path:
    """The folder layout FER+'s script generates: ``data/FER2013{Train,Valid,Test}/`` PNGs + label.csv,
    with ``fer2013new.csv`` at the clone's root. Returns the clone root."""
    root = Path(parent) / "FERPlus"
    votes = ferplus_votes()
    lines = [",".join(FERPLUS_HEADER)] + [
        ",".join([u, n] + [str(x) for x in v]) for (_, u, _), (n, v) in zip(fer_rows(), votes)]
    write(root / "fer2013new.csv", ("\n".join(lines) + "\n").encode())
    write_label_csvs(root / "data", fer_rows(), votes, with_images=True)
    return root


# -- KDEF ---------------------------------------------------------------------------------------
def make_kdef(parent: Path, *, duplicate: bool = False) -> Path:
    """``KDEF_and_AKDEF/KDEF/{AF01,BF01,AM02,BM02}`` × 35 files (56×76), with the anomalies of §3.5.
    Returns ``KDEF_and_AKDEF``."""
    root = Path(parent) / "KDEF_and_AKDEF"
    for folder in ("AF01", "BF01", "AM02", "BM02"):
        for e, expr in enumerate(KDEF_EXPRESSIONS):
            for a, angle in enumerate(KDEF_ANGLES):
                img = label_image(e, 76, 56, hash_seed(folder + expr + angle))
                img = np.clip(img.astype(int) + 4 * a, 0, 255).astype(np.uint8)
                write(root / "KDEF" / folder / f"{folder}{expr}{angle}.JPG", jpeg(img))
    (root / "KDEF" / "AM02" / "AM02SAHL.JPG").rename(root / "KDEF" / "AM02" / "AM02V.JPG")
    write(root / "KDEF" / "BF01" / "BF01NEHL.JPG", jpeg(np.zeros((76, 56, 3), np.uint8)))
    write(root / "AKDEF" / "FAFFL.JPG", jpeg(label_image(1, 76, 56, 7, channels=1)))
    if duplicate:
        write(root / "KDEF" / "BM02" / "bm02hafr.jpg", jpeg(label_image(3, 76, 56, 9)))
    return root


def hash_seed(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


# -- ImageFolder --------------------------------------------------------------------------------
FOLDER_CLASSES = ("Happy", "sad", "ANGRY", "surprise", "Fear", "disgust", "neutral")


def make_folder(parent: Path, per_class: tuple[int, int] = (2, 1), png: bool = False) -> Path:
    """``ROOT/{train,test}/<class>/img_<k>.jpg`` with class names in mixed case and aliases."""
    root = Path(parent) / "folder_ds"
    k = 0
    for split, n in zip(("train", "test"), per_class):
        for c, name in enumerate(FOLDER_CLASSES):
            for _ in range(n):
                img = label_image(c, 64, 64, 500 + k)
                data = encode_image(img, "png") if png else jpeg(img)
                write(root / split / name / f"img_{k:03d}.{'png' if png else 'jpg'}", data)
                k += 1
    return root


# -- damage -------------------------------------------------------------------------------------
def damage(path: Path, how: str) -> None:
    """Make ``path`` a zero-byte, truncated or undecodable file, or delete it."""
    path = Path(path)
    if how == "zero":
        path.write_bytes(b"")
    elif how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(b"this is not an image" * 10)
    elif how == "delete":
        path.unlink()
    else:
        raise ValueError(how)


def tree_hash(root: Path) -> str:
    """SHA-256 over every file's relative path and bytes (to prove a tree was not touched)."""
    h = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def tree_bytes(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*"))
            if p.is_file() and str(p.relative_to(root)) not in exclude}


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
