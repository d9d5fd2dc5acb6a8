"""torchvision's ImageFolder convention: ``ROOT/{train,test}/<class>/<image>``.

Class folder names map case-insensitively onto the canonical emotions (``Happy``, ``happiness``,
``3_happiness`` …; see :mod:`lldif_bench.emotions`). Numeric folder names (``0`` … ``6``) carry no
meaning by themselves: pass ``class_names`` (the emotion of folder 0, 1, …) for those.
Split folders: ``train``; ``test``, ``val``, ``valid`` or ``validation`` are the test split.
"""

from __future__ import annotations

import re
from pathlib import Path

from lldif_bench.datasets.base import ADAPTERS, Dataset, class_names_for
from lldif_bench.datasets.record import Record
from lldif_bench.emotions import ALIASES, CANONICAL_8, canonical_index
from lldif_bench.errors import UserError
from lldif_bench.imageio import is_image_name

SPLIT_FOLDERS = {"train": "train", "training": "train", "test": "test", "val": "test", "valid": "test",
                 "validation": "test"}
_PREFIX = re.compile(r"^\d+[_\-\s]+")


def split_dirs(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for child in sorted(root.iterdir()):
        split = SPLIT_FOLDERS.get(child.name.lower())
        if child.is_dir() and split and split not in found:
            found[split] = child
    return found


def class_of_folder(folder: str, numeric_names: list[str] | None) -> int:
    """Canonical index of a class folder name; raises UserError if it is not an emotion."""
    if folder.isdigit():
        if not numeric_names:
            raise UserError(
                f"class folder {folder!r} is a number, which says nothing about the emotion; pass "
                f"--class-names (the emotion of folder 0, 1, …, e.g. neutral,happy,sad,surprise,fear,"
                f"disgust,anger)")
        if int(folder) >= len(numeric_names):
            raise UserError(f"class folder {folder!r} has no entry in --class-names {numeric_names}")
        folder = numeric_names[int(folder)]
    name = _PREFIX.sub("", folder)
    try:
        return canonical_index(name)
    except ValueError:
        raise UserError(
            f"class folder {folder!r} is not an emotion name; known names (any case): "
            f"{', '.join(sorted(ALIASES))}") from None


@ADAPTERS.register("folder", help="ImageFolder ROOT/{train,test}/<class>/*")
class ImageFolderDataset(Dataset):
    name = "folder"
    layout_hint = "ROOT/train/<class>/* and ROOT/test/<class>/*"

    def __init__(self, root: Path, class_names: list[str] | str | None = None, **options) -> None:
        root = Path(root)
        if isinstance(class_names, str):
            class_names = [c.strip() for c in class_names.split(",") if c.strip()]
        dirs = split_dirs(root)
        if not dirs:
            raise UserError(f"{root} is not an image-folder dataset: expected {root}/train/<class>/ and "
                            f"{root}/test/<class>/ (test may also be val/valid/validation)")
        super().__init__(root, **({"class_names": class_names} if class_names else {}), **options)
        self.numeric_names = class_names
        self.dirs = dirs
        self._n_classes = 7

    @classmethod
    def detect(cls, path: Path) -> bool:
        dirs = split_dirs(Path(path))
        return "train" in dirs and any(p.is_dir() for p in dirs["train"].iterdir())

    @property
    def class_names(self) -> list[str]:
        self._scanned()  # the class count is known once the folders are listed
        return class_names_for(self._n_classes)

    def _scan(self) -> list[Record]:
        records: list[Record] = []
        for split, folder in sorted(self.dirs.items(), key=lambda kv: kv[0] != "train"):
            for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
                label = class_of_folder(class_dir.name, self.numeric_names)
                for path in sorted(class_dir.rglob("*")):
                    if not path.is_file():
                        continue
                    rel = str(path.relative_to(self.root))
                    if not is_image_name(path.name):
                        self._skip(rel, "not-an-image", f"{rel}: file name is not an image type")
                        continue
                    records.append(Record(relpath=rel, label=label, split=split,
                                          native_label=class_dir.name))
            stray = sorted(p.name for p in folder.iterdir() if p.is_file())
            for name in stray:
                rel = f"{folder.name}/{name}"
                self._skip(rel, "outside-class-folder", f"{rel}: not inside a class folder")
        if any(r.label == CANONICAL_8.index("contempt") for r in records):
            self._n_classes = 8
        if not records:
            raise UserError(f"no images found under {self.root}/{{train,test}}/<class>/")
        return records

    def describe(self) -> dict:
        return {"split_folders": {s: p.name for s, p in self.dirs.items()},
                "class_folders": sorted({r.native_label for r in self.records()})}
