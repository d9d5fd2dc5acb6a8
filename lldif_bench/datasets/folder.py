"""torchvision's ImageFolder convention: ``ROOT/{train,test}/<class>/<image>``.

Class folder names map case-insensitively onto the canonical emotions (``Happy``, ``happiness``,
``3_happiness`` …; see :mod:`lldif_bench.emotions`). Numeric folder names (``0`` … ``6``) carry no
meaning by themselves: pass ``class_names``, either the emotion of folder 0, 1, … or the name of a
label scheme (:data:`LABEL_SCHEMES`, e.g. ``rafdb``: folders ``1`` … ``7`` = surprise … neutral).
Split folders: ``train``; ``test``, ``val``, ``valid`` or ``validation`` are the test split.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from lldif_bench.datasets.base import ADAPTERS, Dataset, class_names_for
from lldif_bench.datasets.ferplus_labels import FER2013_NAMES
from lldif_bench.datasets.record import Record
from lldif_bench.emotions import ALIASES, CANONICAL, CANONICAL_8, canonical_index
from lldif_bench.errors import UserError
from lldif_bench.imageio import is_image_name
from lldif_bench.registry import Registry

SPLIT_FOLDERS = {"train": "train", "training": "train", "test": "test", "val": "test", "valid": "test",
                 "validation": "test"}
_PREFIX = re.compile(r"^\d+[_\-\s]+")

# Named numberings of class folders: {folder number: emotion}
LABEL_SCHEMES: Registry[dict[int, str]] = Registry("label scheme")
LABEL_SCHEMES.add("rafdb", {i + 1: name for i, name in enumerate(CANONICAL)},
                  help="RAF-DB's 1-based labels: 1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, "
                       "6 anger, 7 neutral (the common RAF-DB mirrors' DATASET/{train,test}/{1..7}/)")
LABEL_SCHEMES.add("fer2013", dict(enumerate(FER2013_NAMES)),
                  help="FER2013's emotion column: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral")
LABEL_SCHEMES.add("affectnet", dict(enumerate(("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger",
                                               "contempt"))),
                  help="AffectNet's expression (DAN's folders): 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, "
                       "5 disgust, 6 anger, 7 contempt")


def numbering(class_names: list[str] | str | None) -> tuple[dict[int, str] | None, str | None]:
    """(folder number → emotion, scheme name or None) from ``--class-names``: a scheme name, or the
    comma-separated emotion of folder 0, 1, …"""
    if class_names is None:
        return None, None
    if isinstance(class_names, str):
        class_names = [c.strip() for c in class_names.split(",") if c.strip()]
    if len(class_names) == 1 and class_names[0].lower() in LABEL_SCHEMES:
        scheme = class_names[0].lower()
        return dict(LABEL_SCHEMES.get(scheme)), scheme
    if len(class_names) == 1:
        raise UserError(f"--class-names {class_names[0]!r} is neither a label scheme "
                        f"({', '.join(LABEL_SCHEMES.names())}) nor a comma-separated list of emotions")
    return dict(enumerate(class_names)), None


def split_dirs(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for child in sorted(root.iterdir()):
        split = SPLIT_FOLDERS.get(child.name.lower())
        if child.is_dir() and split and split not in found:
            found[split] = child
    return found


def class_folders(root: Path) -> set[str]:
    """Names of the class folders of every split folder of ``root``."""
    return {p.name for d in split_dirs(Path(root)).values() for p in d.iterdir() if p.is_dir()}


def is_rafdb_numbered(root: Path) -> bool:
    """``root/{train,test}/{1..7}/``: RAF-DB's own 1-based labels as folder names (no ``0``)."""
    dirs = split_dirs(Path(root))
    names = class_folders(root) if "train" in dirs else set()
    return bool(names) and names <= {str(i) for i in range(1, 8)} and "7" in names


def class_of_folder(folder: str, numbers: dict[int, str] | None) -> int:
    """Canonical index of a class folder name; raises UserError if it is not an emotion."""
    if folder.isdigit():
        if not numbers:
            raise UserError(
                f"class folder {folder!r} is a number, which says nothing about the emotion; pass "
                f"--class-names: a label scheme ({', '.join(LABEL_SCHEMES.names())}; rafdb = folders 1..7, "
                f"surprise … neutral) or the emotion of folder 0, 1, … (e.g. neutral,happy,sad,surprise,"
                f"fear,disgust,anger)")
        if int(folder) not in numbers:
            hint = " (RAF-DB mirrors number their folders 1..7: use --class-names rafdb)" if folder == "7" else ""
            raise UserError(f"class folder {folder!r} has no entry in --class-names: it names folders "
                            f"{', '.join(map(str, sorted(numbers)))}{hint}")
        folder = numbers[int(folder)]
    name = _PREFIX.sub("", folder)
    try:
        return canonical_index(name)
    except ValueError:
        raise UserError(
            f"class folder {folder!r} is not an emotion name; known names (any case): "
            f"{', '.join(sorted(ALIASES))}") from None


def scan_class_folders(dataset: Dataset, dirs: dict[str, Path], label_of: Callable[[str], int]) -> list[Record]:
    """Records of ``<split>/<class>/**/<image>`` (train first); stray files are counted skips."""
    records: list[Record] = []
    root = dataset.root
    for split, folder in sorted(dirs.items(), key=lambda kv: kv[0] != "train"):
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            label = label_of(class_dir.name)
            for path in sorted(class_dir.rglob("*")):
                if not path.is_file():
                    continue
                rel = str(path.relative_to(root))
                if not is_image_name(path.name):
                    dataset._skip(rel, "not-an-image", f"{rel}: file name is not an image type")
                    continue
                records.append(Record(relpath=rel, label=label, split=split, native_label=class_dir.name))
        for name in sorted(p.name for p in folder.iterdir() if p.is_file()):
            rel = f"{folder.name}/{name}"
            dataset._skip(rel, "outside-class-folder", f"{rel}: not inside a class folder")
    if not records:
        raise UserError(f"no images found under {root}/{{train,test}}/<class>/")
    return records


@ADAPTERS.register("folder", help="ImageFolder ROOT/{train,test}/<class>/*")
class ImageFolderDataset(Dataset):
    name = "folder"
    layout_hint = "ROOT/train/<class>/* and ROOT/test/<class>/*"

    def __init__(self, root: Path, class_names: list[str] | str | None = None, **options) -> None:
        root = Path(root)
        self.numbers, self.scheme = numbering(class_names)
        dirs = split_dirs(root)
        if not dirs:
            raise UserError(f"{root} is not an image-folder dataset: expected {root}/train/<class>/ and "
                            f"{root}/test/<class>/ (test may also be val/valid/validation)")
        if self.scheme:
            options["class_names"] = self.scheme
        elif self.numbers:
            options["class_names"] = [self.numbers[i] for i in sorted(self.numbers)]
        super().__init__(root, **options)
        self.dirs = dirs
        self._n_classes = 7

    @classmethod
    def detect(cls, path: Path) -> bool:
        dirs = split_dirs(Path(path))
        if "train" not in dirs or not any(p.is_dir() for p in dirs["train"].iterdir()):
            return False
        return not is_rafdb_numbered(Path(path))  # RAF-DB's 1..7 folders: the rafdb adapter reads them

    @property
    def class_names(self) -> list[str]:
        self._scanned()  # the class count is known once the folders are listed
        return class_names_for(self._n_classes)

    def _scan(self) -> list[Record]:
        records = scan_class_folders(self, self.dirs, lambda name: class_of_folder(name, self.numbers))
        if any(r.label == CANONICAL_8.index("contempt") for r in records):
            self._n_classes = 8
        return records

    def describe(self) -> dict:
        out = {"split_folders": {s: p.name for s, p in self.dirs.items()},
               "class_folders": sorted({r.native_label for r in self._scanned()})}
        if self.numbers:
            out["label_scheme"] = self.scheme or "--class-names list"
            out["folder_to_class"] = {str(k): v for k, v in sorted(self.numbers.items())}
        return out
