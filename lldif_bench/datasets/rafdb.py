"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` + ``Image/aligned/<stem>_aligned.jpg``.

Label lines are ``<name> <1..7>`` (1 Surprise … 7 Neutral, the canonical order, shifted to 0..6);
the split is the name prefix (``train_`` / ``test_``). ``root`` may be ``basic/``, ``raf-basic/``
or the folder holding either. See shared/design/datasets.md §1.

The layout the common RAF-DB mirrors ship, ``DATASET/{train,test}/{1..7}/*.jpg`` (RAF-DB's own
1-based labels as folder names), is read too (``layout: folders``, label scheme ``rafdb``).
"""

from __future__ import annotations

import os
from pathlib import Path

from lldif_bench.datasets.base import ADAPTERS, Dataset, DirIndex
from lldif_bench.datasets.folder import (
    LABEL_SCHEMES,
    class_of_folder,
    is_rafdb_numbered,
    scan_class_folders,
    split_dirs,
)
from lldif_bench.datasets.record import Record
from lldif_bench.emotions import CANONICAL, rafdb_label_to_index
from lldif_bench.errors import UserError

LABEL_FILES = ("EmoLabel/list_patition_label.txt", "EmoLabel/list_partition_label.txt")
ROOT_NAMES = ("", "basic", "raf-basic", "RAF-DB/basic")
IMAGE_VARIANTS = ("aligned", "original")


def find_rafdb_root(src: Path) -> tuple[Path, str] | None:
    """(basic root, label file relpath) under ``src``, or None."""
    for sub in ROOT_NAMES:
        root = src / sub if sub else src
        for label in LABEL_FILES:
            if (root / label).is_file():
                return root, label
    return None


@ADAPTERS.register("rafdb", help="RAF-DB basic (EmoLabel/list_patition_label.txt, Image/aligned)")
class RafDb(Dataset):
    name = "rafdb"
    layout_hint = "basic/EmoLabel/list_patition_label.txt (or list_partition_label.txt)"

    def __init__(self, root: Path, images: str = "aligned", **options) -> None:
        src = Path(root)
        found = find_rafdb_root(src)
        if found is None and not is_rafdb_numbered(src):
            raise UserError(
                f"{src} is not a RAF-DB basic folder: expected {src}/EmoLabel/list_patition_label.txt "
                f"(or list_partition_label.txt), or the same under {src}/basic or {src}/raf-basic, or a "
                f"mirror's {src}/train/1 … {src}/train/7 and {src}/test/1 … (folders = labels 1..7)")
        if images not in IMAGE_VARIANTS:
            raise UserError(f"RAF-DB --images must be one of {', '.join(IMAGE_VARIANTS)}, got {images!r}")
        super().__init__(found[0] if found else src, images=images, **options)
        self.layout = "label-file" if found else "folders"
        self.label_relpath = found[1] if found else None
        self.images = images
        self.aligned_faces = images == "aligned"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return find_rafdb_root(Path(path)) is not None or is_rafdb_numbered(Path(path))

    def image_relpath(self, name: str) -> str:
        stem = os.path.splitext(os.path.basename(name))[0]
        if self.images == "aligned":
            return f"Image/aligned/{stem}_aligned.jpg"
        return f"Image/original/{name}"

    def _scan(self) -> list[Record]:
        if self.layout == "folders":
            numbers = LABEL_SCHEMES.get("rafdb")
            return scan_class_folders(self, split_dirs(self.root), lambda name: class_of_folder(name, numbers))
        text = (self.root / self.label_relpath).read_bytes().decode("utf-8", errors="replace")
        records: list[Record] = []
        missing_first: str | None = None
        listed = 0
        files = DirIndex()  # each image folder listed once: no stat per label line
        folder_paths: dict[str, Path] = {}  # one Path per image folder, not per label line
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            key = f"{self.label_relpath}:{lineno}"
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                self._skip(key, "malformed-label", f"line {lineno} {raw!r}: expected '<name> <1..7>'")
                continue
            name, label = parts
            split = "train" if name.startswith("train") else "test" if name.startswith("test") else None
            try:
                index = rafdb_label_to_index(int(label))
            except ValueError:
                self._skip(key, "malformed-label", f"line {lineno} {raw!r}: label must be 1..7")
                continue
            if split is None:
                self._skip(key, "malformed-label", f"line {lineno} {raw!r}: name must start with train/test")
                continue
            listed += 1
            relpath = self.image_relpath(name)
            folder, file_name = relpath.rsplit("/", 1)
            folder_path = folder_paths.get(folder)
            if folder_path is None:
                folder_path = folder_paths[folder] = self.root / folder
            found = files.find_name(folder_path, file_name)
            if found is None:
                missing_first = missing_first or str(self.root / relpath)
                self._skip(relpath, "missing-file", f"{self.root / relpath}: listed in the label file")
                continue
            if found != file_name:  # copy written in another image format
                relpath = f"{folder}/{found}"
            records.append(Record(relpath=relpath, label=index, split=split, native_label=label,
                                  extra={"name": name}))
        if listed and not records:
            raise UserError(
                f"none of the {listed} RAF-DB images listed in {self.label_relpath} exist; the first "
                f"missing one is {missing_first}. Unzip Image/{self.images}.zip inside {self.root}")
        return records

    def label_files(self) -> list[tuple[Path, str]]:
        if self.layout == "folders":
            return []
        files = [(self.root / self.label_relpath, self.label_relpath)]
        if self.images == "original":
            ann = self.root / "Annotation"
            files += [(p, str(p.relative_to(self.root))) for p in sorted(ann.rglob("*.txt"))]
        return files

    def describe(self) -> dict:
        if self.layout == "folders":
            return {"layout": "folders", "label_scheme": "rafdb",
                    "folder_to_class": {str(k): v for k, v in LABEL_SCHEMES.get("rafdb").items()},
                    "split_folders": {s: p.name for s, p in split_dirs(self.root).items()},
                    "split_rule": "split folder train/test", "native_order": list(CANONICAL)}
        return {"layout": "label-file", "images": self.images, "label_file": self.label_relpath,
                "split_rule": "name prefix train_/test_", "native_order": list(CANONICAL)}
