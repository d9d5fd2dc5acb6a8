"""The packed cache: a dataset decoded and resized once into a uint8 memory-mapped array.

Layout of ``<dataset root>/.cache/packed-<S>/`` (or ``<cache_dir>/packed-<S>/``)::

    images.npy     (N, S, S, 3) uint8, RGB (grey images replicated to 3 channels), memory-mapped
    labels.npy     (N,) int64 canonical labels
    splits.npy     (N,) int8: 0 train, 1 test
    valid.npy      (N,) bool: False for items that could not be decoded (counted in meta.json)
    relpaths.npy   (N,) str
    landmarks.npy  (N, 68, 2) float32 pixel coordinates of the S×S image (only when the dataset root
                   has landmarks.npz)
    meta.json      fingerprint of the record list, class names, sizes, skip counts

It is written into a temporary folder and renamed into place (a killed pack leaves nothing half
done), reused while the fingerprint (record list + image size + landmark file) matches, and rebuilt
when it does not. A lock file keeps two runs (or DDP ranks) from packing the same thing twice.
The source dataset is never modified; a read-only dataset falls back to a per-user cache folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from filelock import FileLock
from tqdm import tqdm

from lldif_bench.errors import UserError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SPLIT_CODES = {"train": 0, "test": 1}
LANDMARKS_FILE = "landmarks.npz"


@dataclass
class PackedDataset:
    """An opened packed cache; ``images`` is a read-only memmap."""

    path: Path
    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    valid: np.ndarray
    relpaths: np.ndarray
    landmarks: np.ndarray | None
    class_names: list[str]
    meta: dict = field(default_factory=dict)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split_indices(self, split: str) -> np.ndarray:
        """Row indices of the decodable items of ``split`` (``train`` or ``test``)."""
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
        return np.flatnonzero((self.splits == SPLIT_CODES[split]) & self.valid)


def fingerprint(records: Sequence[Any], image_size: int, class_names: Sequence[str],
                landmark_file: Path | None) -> str:
    """SHA-256 over what the cache depends on: records (key, label, split), size, classes, landmarks."""
    h = hashlib.sha256(f"v{FORMAT_VERSION}|{image_size}|{','.join(class_names)}\n".encode())
    for r in records:
        h.update(f"{r.relpath}\t{int(r.label)}\t{r.split}\n".encode())
    if landmark_file is not None and landmark_file.is_file():
        with open(landmark_file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def cache_location(dataset: Any, image_size: int, cache_dir: str | Path | None = None) -> Path:
    """Where the pack of ``dataset`` at ``image_size`` lives (``cache_dir`` overrides the default)."""
    if cache_dir is not None:
        return Path(cache_dir) / f"packed-{image_size}"
    return Path(dataset.root) / ".cache" / f"packed-{image_size}"


def _user_cache(dataset: Any, image_size: int) -> Path:
    key = hashlib.sha256(str(Path(dataset.root).resolve()).encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lldif-bench" / "packed"
    return base / key / f"packed-{image_size}"


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".write-test.")
        os.close(fd)
        os.unlink(tmp)
        return True
    except OSError:
        return False


def open_packed(path: str | Path) -> PackedDataset:
    """Open a finished pack (memory-mapped images)."""
    path = Path(path)
    try:
        meta = json.loads((path / "meta.json").read_text())
        lm = path / "landmarks.npy"
        return PackedDataset(
            path=path,
            images=np.load(path / "images.npy", mmap_mode="r"),
            labels=np.load(path / "labels.npy"),
            splits=np.load(path / "splits.npy"),
            valid=np.load(path / "valid.npy"),
            relpaths=np.load(path / "relpaths.npy"),
            landmarks=np.load(lm) if lm.is_file() else None,
            class_names=list(meta["class_names"]),
            meta=meta,
        )
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"the packed cache {path} is unreadable ({err}); delete the folder to rebuild it") from None


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """A uint8 image (grey, RGB or RGBA) as ``(size, size, 3)`` RGB, exactly as the packed cache stores
    it (area averaging when shrinking, bilinear when enlarging); training-time inputs use it too."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 4:
        image = image[:, :, :3]
    h, w = image.shape[:2]
    interp = cv2.INTER_AREA if (h > size or w > size) else cv2.INTER_LINEAR
    out = cv2.resize(image, (size, size), interpolation=interp)
    if out.ndim == 2:
        out = out[:, :, None]
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return out


def _load_landmarks(root: Path, relpaths: Sequence[str]) -> tuple[np.ndarray, int] | None:
    """Points aligned to ``relpaths`` (NaN rows for keys absent from the file) and the absent count."""
    path = root / LANDMARKS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = [str(k) for k in data["relpath"]]
            points = np.asarray(data["points"], dtype=np.float32)
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"{path} is not a readable landmark file ({err}); rebuild it with "
                        f"`lldif-bench landmarks {root} --overwrite`") from None
    if points.shape != (len(keys), 68, 2):
        raise UserError(f"{path}: points have shape {points.shape}, expected ({len(keys)}, 68, 2)")
    index = {k: i for i, k in enumerate(keys)}
    out = np.full((len(relpaths), 68, 2), np.nan, dtype=np.float32)
    absent = 0
    for row, key in enumerate(relpaths):
        i = index.get(key)
        if i is None:
            absent += 1
        else:
            out[row] = points[i]
    return out, absent


def _build(dataset: Any, records: list, image_size: int, target: Path, fp: str, workers: int,
           progress: bool) -> None:
    n = len(records)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        valid = np.zeros(n, dtype=bool)
        src_hw = np.zeros((n, 2), dtype=np.float32)
        skipped: dict[str, int] = {}
        examples: list[str] = []
        blank = np.zeros((image_size, image_size, 3), np.uint8)

        def work(i: int) -> tuple[np.ndarray | None, str | None]:
            try:
                img = dataset.load(records[i])
            except (OSError, ValueError, cv2.error) as err:  # undecodable / missing: a counted skip
                return None, f"{type(err).__name__}: {err}"
            src_hw[i] = img.shape[:2]
            return resize_rgb(np.asarray(img, dtype=np.uint8), image_size), None

        # images.npy is written front to back in chunks (not through a writable memmap, whose dirty
        # pages would all count as this process's memory): memory stays bounded at any size
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                  "shape": (n, image_size, image_size, 3)}
        chunk = 512
        with open(tmp / "images.npy", "wb") as f, ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
                tqdm(total=n, desc=f"packing {n} images at {image_size}px", unit="img", disable=not progress,
                     leave=False) as bar:
            np.lib.format.write_array_header_1_0(f, header)
            for start in range(0, n, chunk):
                for i, (img, err) in zip(range(start, n), pool.map(work, range(start, min(start + chunk, n)))):
                    f.write((blank if img is None else img).tobytes())
                    if err is None:
                        valid[i] = True
                    else:
                        kind = err.split(":", 1)[0]
                        skipped[kind] = skipped.get(kind, 0) + 1
                        if len(examples) < 5:
                            examples.append(f"{records[i].relpath}: {err}")
                bar.update(min(chunk, n - start))
        if skipped:
            log.warning("packing skipped %d of %d images that could not be read (%s); e.g. %s",
                        n - int(valid.sum()), n, skipped, examples[0])
        relpaths = [r.relpath for r in records]
        np.save(tmp / "labels.npy", np.array([int(r.label) for r in records], dtype=np.int64))
        np.save(tmp / "splits.npy", np.array([SPLIT_CODES[r.split] for r in records], dtype=np.int8))
        np.save(tmp / "valid.npy", valid)
        np.save(tmp / "relpaths.npy", np.array(relpaths, dtype=str))
        lm_meta: dict[str, Any] = {"present": False}
        found = _load_landmarks(Path(dataset.root), relpaths)
        if found is not None:
            points, absent = found
            # pixel coordinates of the stored image → of the S×S packed image
            scale = np.where(src_hw > 0, image_size / np.maximum(src_hw, 1), 1.0)  # (N, 2) as (H, W)
            points = points * scale[:, None, ::-1]
            unusable = ~np.isfinite(points).all(axis=(1, 2))
            if unusable.any():
                from lldif_bench.landmarks.fallback import canonical_shape_in_crop

                points[unusable] = canonical_shape_in_crop(image_size, image_size)
            np.save(tmp / "landmarks.npy", points.astype(np.float32))
            lm_meta = {"present": True, "absent_from_file": absent, "filled_with_canonical_shape": int(unusable.sum())}
            if unusable.any():
                log.warning("%d images have no usable landmarks in %s (absent or NaN); they get the canonical "
                            "iBUG-68 mean shape", int(unusable.sum()), Path(dataset.root) / LANDMARKS_FILE)
        meta = {
            "format_version": FORMAT_VERSION, "fingerprint": fp, "image_size": image_size, "count": n,
            "valid": int(valid.sum()), "skipped": skipped, "skipped_examples": examples,
            "class_names": list(dataset.class_names), "source": str(Path(dataset.root).resolve()),
            "landmarks": lm_meta,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def pack_dataset(dataset: Any, image_size: int, *, cache_dir: str | Path | None = None, workers: int = 4,
                 progress: bool = True) -> PackedDataset:
    """The pack of ``dataset`` at ``image_size``: reused when current, (re)built otherwise.

    ``dataset`` needs ``root``, ``records()``, ``load(record)`` and ``class_names`` (the adapter API).
    """
    records = [r for r in dataset.records() if r.split in SPLIT_CODES]
    if not records:
        raise UserError(f"dataset {dataset.root} has no train/test records to train on")
    target = cache_location(dataset, image_size, cache_dir)
    if not _writable(target.parent):
        if cache_dir is not None:
            raise UserError(f"cannot write the packed cache into {target.parent}; pass a writable --cache-dir")
        fallback = _user_cache(dataset, image_size)
        log.info("%s is not writable; packing into %s instead", target.parent, fallback)
        target = fallback
        if not _writable(target.parent):
            raise UserError(f"cannot write the packed cache into {target.parent}; pass a writable --cache-dir")
    fp = fingerprint(records, image_size, list(dataset.class_names), Path(dataset.root) / LANDMARKS_FILE)
    with FileLock(str(target) + ".lock"):
        meta_file = target / "meta.json"
        if meta_file.is_file():
            try:
                current = json.loads(meta_file.read_text()).get("fingerprint")
            except (OSError, ValueError):
                current = None
            if current == fp:
                log.info("reusing the packed cache %s", target)
                return open_packed(target)
            log.info("the packed cache %s is stale (records or landmarks changed); rebuilding it", target)
        _build(dataset, records, image_size, target, fp, workers, progress)
    return open_packed(target)
