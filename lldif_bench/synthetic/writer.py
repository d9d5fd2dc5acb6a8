"""Write a synthetic FER dataset in the exact RAF-DB "basic" layout, plus ground-truth landmarks.

```
out_root/
  EmoLabel/list_patition_label.txt   "train_00001.jpg 5" … "test_0001.jpg 5"; LF; no final newline
  Image/aligned/train_00001_aligned.jpg … test_0001_aligned.jpg   (size×size RGB JPEG, quality 95)
  landmarks.npz                      relpath, points (N,68,2), confidence, status
  synthetic.json                     generator settings and counts (provenance)
```
Deterministic: every image comes from generators seeded by (seed, index), so two runs with the same
arguments write byte-identical files.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lldif_bench import __version__
from lldif_bench.emotions import CANONICAL
from lldif_bench.errors import UserError
from lldif_bench.imageio import atomic_write_bytes, write_image
from lldif_bench.synthetic.render import render_face, sample_face_spec
from lldif_bench.synthetic.revisions import DEFAULT_REVISION, generator_revision

# RAF-DB basic training-set class counts, labels 1..7 (datasets.md §1.2).
RAFDB_TRAIN_COUNTS = (1290, 281, 717, 4772, 1982, 705, 2524)
TEST_FRACTION = 0.2
MIN_TEST_PER_CLASS = 2
MIN_TRAIN_PER_CLASS = 2
MIN_IMAGES = len(CANONICAL) * (MIN_TEST_PER_CLASS + MIN_TRAIN_PER_CLASS)
MAX_IMAGES = 45_000        # keeps test indices within RAF-DB's 4 digits
MIN_SIZE, MAX_SIZE = 32, 1024
LABEL_FILE = "EmoLabel/list_patition_label.txt"
IMAGE_DIR = "Image/aligned"
LANDMARK_FILE = "landmarks.npz"
CARD_FILE = "synthetic.json"
# Add a revision (synthetic.revisions) whenever the renders change for the same (num_images, size,
# seed): a clear set made by another revision is regenerated instead of reused (2: per-person feature
# contrast and dim scenes; 3: back to full contrast and no dim scenes, the low-light gap left to the
# `realistic` preset; 4: fine cues). GENERATOR_REVISION is the default one.
GENERATOR_REVISION = DEFAULT_REVISION
SHUFFLE_STREAM = 1  # SeedSequence tag of the label shuffle (per-image streams use tag 0)


def class_counts(num_images: int) -> list[tuple[int, int]]:
    """(train, test) image counts per canonical class for ``num_images`` images.

    Class totals follow RAF-DB's class frequencies (largest-remainder rounding); every class keeps
    at least ``MIN_TRAIN_PER_CLASS`` + ``MIN_TEST_PER_CLASS`` images (taken from the largest class),
    and about ``TEST_FRACTION`` of each class goes to the test split.
    """
    _check_count(num_images)
    freq = np.array(RAFDB_TRAIN_COUNTS, dtype=float) / sum(RAFDB_TRAIN_COUNTS)
    exact = num_images * freq
    totals = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - totals), kind="stable")[: num_images - totals.sum()]:
        totals[k] += 1
    floor = MIN_TRAIN_PER_CLASS + MIN_TEST_PER_CLASS
    for k in range(len(totals)):
        while totals[k] < floor:
            totals[int(np.argmax(totals))] -= 1
            totals[k] += 1
    counts = []
    for total in totals:
        test = min(max(MIN_TEST_PER_CLASS, round(TEST_FRACTION * total)), total - MIN_TRAIN_PER_CLASS)
        counts.append((int(total - test), int(test)))
    return counts


def split_plan(num_images: int, seed: int) -> list[tuple[str, int]]:
    """``(file name, canonical label)`` in label-file order: all train images, then all test images.

    Labels are shuffled within each split, as in RAF-DB (the index says nothing about the class).
    """
    counts = class_counts(num_images)
    rng = np.random.default_rng(np.random.SeedSequence([seed, SHUFFLE_STREAM]))
    plan: list[tuple[str, int]] = []
    for split, width, column in (("train", 5, 0), ("test", 4, 1)):
        labels = np.repeat(np.arange(len(counts)), [c[column] for c in counts])
        labels = labels[rng.permutation(len(labels))]
        plan += [(f"{split}_{i + 1:0{width}d}.jpg", int(lab)) for i, lab in enumerate(labels)]
    return plan


def aligned_relpath(name: str) -> str:
    """``train_00001.jpg`` → ``Image/aligned/train_00001_aligned.jpg`` (RAF-DB's naming)."""
    return f"{IMAGE_DIR}/{Path(name).stem}_aligned.jpg"


def generate_synthetic(out_root: Path, num_images: int = 700, size: int = 100, seed: int = 0, *,
                       revision: int = DEFAULT_REVISION, progress: bool = True) -> dict:
    """Render ``num_images`` faces into ``out_root`` (missing or empty) in the RAF-DB basic layout,
    with generator ``revision`` (``synthetic.revisions``; recorded in synthetic.json).

    Returns a summary: settings, split sizes and per-class counts per split (canonical names).
    """
    out_root = Path(out_root)
    _check_count(num_images)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise UserError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}")
    if seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {seed}")
    try:
        generator_revision(revision)
    except KeyError as err:
        raise UserError(f"--revision: {err}") from None
    if out_root.exists() and (not out_root.is_dir() or any(out_root.iterdir())):
        raise UserError(f"{out_root} exists and is not an empty folder; choose a new output folder")

    plan = split_plan(num_images, seed)
    points = np.zeros((len(plan), 68, 2), np.float32)
    relpaths = []
    for index, (name, label) in enumerate(tqdm(plan, desc="synthetic faces", unit="img", disable=not progress)):
        face = render_face(sample_face_spec(label, seed, index, revision), size)
        relpath = aligned_relpath(name)
        write_image(out_root / relpath, face.image, jpeg_quality=95)
        points[index] = face.landmarks
        relpaths.append(relpath)

    atomic_write_bytes(out_root / LANDMARK_FILE, npz_bytes({
        "relpath": np.array(relpaths, dtype=str),
        "points": points,
        "confidence": np.ones(len(plan), np.float32),
        "status": np.array(["ground-truth"] * len(plan), dtype=str),
    }))
    summary = _summary(plan, out_root, num_images, size, seed)
    card = {"generator": "lldif_bench.synthetic", "version": __version__, "generator_revision": revision,
            **summary}
    card.pop("out_root")
    atomic_write_bytes(out_root / CARD_FILE, (json.dumps(card, indent=2, sort_keys=True) + "\n").encode())
    # The label file last: its presence marks a complete dataset.
    lines = "\n".join(f"{name} {label + 1}" for name, label in plan)
    atomic_write_bytes(out_root / LABEL_FILE, lines.encode("ascii"))
    return summary


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive (readable by ``np.load``) with fixed timestamps, so equal arrays give
    equal bytes (``np.savez`` stamps each member with the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def _summary(plan: list[tuple[str, int]], out_root: Path, num_images: int, size: int, seed: int) -> dict:
    per_split = {split: {name: 0 for name in CANONICAL} for split in ("train", "test")}
    for name, label in plan:
        per_split[name.split("_")[0]][CANONICAL[label]] += 1
    return {"out_root": str(out_root), "num_images": num_images, "size": size, "seed": seed,
            "num_train": sum(per_split["train"].values()), "num_test": sum(per_split["test"].values()),
            **per_split}


def _check_count(num_images: int) -> None:
    if not MIN_IMAGES <= num_images <= MAX_IMAGES:
        raise UserError(
            f"--num-images must be between {MIN_IMAGES} (2 train + 2 test images per class) and "
            f"{MAX_IMAGES} (RAF-DB's 4-digit test names), got {num_images}")
