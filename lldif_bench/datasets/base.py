"""The dataset adapter contract and its registry.

An adapter reads one official on-disk layout (RAF-DB, FER2013/FERPlus, KDEF, ImageFolder) and
exposes the same things: labelled :class:`Record` items for both splits, the image of a record as
uint8 ``(H, W, C)``, the canonical class names, and what it had to skip while parsing (with reasons).
It also knows how its low-light copy is laid out (which label files to copy, where each output
image goes), so ``make-dataset`` and ``open_dataset`` need no dataset-specific code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lldif_bench.datasets.record import Record
from lldif_bench.emotions import CANONICAL, CANONICAL_8
from lldif_bench.imageio import IMAGE_SUFFIXES, ImageDecodeError, decode_image
from lldif_bench.registry import Registry

ADAPTERS: Registry[type[Dataset]] = Registry("dataset adapter")

# Work files of an unfinished build (journal, FER2013 rows) live here inside OUT.
WORK_DIR = ".lldif-work"


class SkipItem(Exception):
    """An item that cannot be used; ``code`` is the short reason written as ``skipped:<code>``."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail or code


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def decode_or_skip(data: bytes, name: str) -> np.ndarray:
    """Decode image bytes; a bad image becomes :class:`SkipItem` with a short reason code."""
    if len(data) == 0:
        raise SkipItem("empty-file", f"{name}: empty file (0 bytes)")
    try:
        return decode_image(data, name=name)
    except ImageDecodeError as err:
        code = "truncated" if "truncated" in str(err) or looks_truncated(data) else "undecodable"
        raise SkipItem(code, f"{err}{' (the file ends early)' if code == 'truncated' else ''}") from None


def looks_truncated(data: bytes) -> bool:
    """A JPEG without its end-of-image marker or a PNG without its IEND chunk."""
    if data[:2] == b"\xff\xd8":
        return b"\xff\xd9" not in data[-64:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-32:]
    return False


def existing_variant(path: Path) -> Path | None:
    """``path`` if it exists, else the same stem with another image suffix (a copy made with
    ``--image-format png`` keeps names but changes suffixes), else ``None``."""
    if path.is_file():
        return path
    for suffix in VARIANT_SUFFIXES:
        alt = path.with_suffix(suffix)
        if alt.is_file():
            return alt
    return None


VARIANT_SUFFIXES = IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES)


class DirIndex:
    """The file names of folders, each folder listed once (``os.scandir``), so checking that N
    listed files exist costs N set look-ups instead of N (or, for a missing file, 19 N) ``stat``
    calls; answers what :func:`existing_variant` answers."""

    def __init__(self) -> None:
        self._files: dict[Path | str, frozenset[str]] = {}

    def names(self, folder: Path | str) -> frozenset[str]:
        """Names of the regular files in ``folder`` (empty when it does not exist). Keyed by the
        folder as given: building a ``Path`` per call was half the cost of listing FER+'s folders."""
        found = self._files.get(folder)
        if found is None:
            try:
                with os.scandir(folder) as entries:
                    found = frozenset(e.name for e in entries if e.is_file())
            except (FileNotFoundError, NotADirectoryError):
                found = frozenset()
            self._files[folder] = found
        return found

    def find(self, path: Path) -> Path | None:
        """``path`` if it exists, else the same stem with another image suffix, else ``None``."""
        path = Path(path)
        name = self.find_name(path.parent, path.name)
        return None if name is None else path.with_name(name)

    def find_name(self, folder: Path, name: str) -> str | None:
        """:meth:`find` for a file ``name`` in ``folder``, answered with the name found (no path
        objects per file: the per-item cost of listing a 35,000-file layout)."""
        names = self.names(folder)
        if name in names:
            return name
        stem = os.path.splitext(name)[0]
        for suffix in VARIANT_SUFFIXES:
            if stem + suffix in names:
                return stem + suffix
        return None


def class_names_for(n_classes: int) -> list[str]:
    return list(CANONICAL_8 if n_classes == 8 else CANONICAL)


class Dataset(ABC):
    """Base class of every adapter. Subclasses set ``name`` and implement :meth:`_scan`.

    ``root`` is the folder the records' relative paths start from; ``options`` are the adapter
    options (JSON-able; ``make-dataset`` stores them in ``dataset.json`` so the copy is read back the
    same way).
    """

    name: ClassVar[str] = ""
    layout_hint: ClassVar[str] = ""  # what a user must point --src at; used in error messages
    aligned_faces: bool = False  # images are aligned face crops (landmark detection uses the whole crop)

    def __init__(self, root: Path, **options: Any) -> None:
        self.root = Path(root)
        self.options = options
        self.skipped: list[tuple[str, str]] = []  # (key, "code: detail") found while parsing
        self.anomalies: list[dict] = []  # flagged but kept (e.g. KDEF renamed files)
        self._records: list[Record] | None = None
        self._extra: list[Record] = []

    # -- what every adapter provides -------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        """Canonical names used by this dataset's labels (7, or 8 with contempt)."""
        return list(CANONICAL)

    @property
    def native_class_names(self) -> list[str]:
        """The dataset's own label names in its own order (recorded in dataset.json)."""
        return self.class_names

    def records(self) -> list[Record]:
        """All labelled items of both splits, in a fixed order (a new list: callers may change it)."""
        return list(self._scanned())

    def _scanned(self) -> list[Record]:
        """The parsed records themselves (no copy): for per-item methods, which must stay O(1)."""
        if self._records is None:
            self.skipped = []
            self.anomalies = []
            self._extra = []
            self._records = self._scan()
        return self._records

    def build_records(self) -> list[Record]:
        """Items a low-light copy must contain: the labelled ones plus source items the current
        protocol leaves out (split ``"unused"``), so the copy mirrors the whole source."""
        return self._scanned() + self._extra

    def load(self, record: Record) -> np.ndarray:
        """The record's image as uint8 ``(H, W, C)``, C in {1, 3}.

        Raises :class:`lldif_bench.imageio.ImageDecodeError` or ``FileNotFoundError``.
        """
        path = self.source_path(record)
        return decode_image(path.read_bytes(), name=str(path))

    def read_source(self, record: Record) -> tuple[np.ndarray, str]:
        """Image and SHA-256 of the source item; a bad item raises :class:`SkipItem`."""
        path = self.source_path(record)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SkipItem("missing-file", f"{path}: listed but missing") from None
        return decode_or_skip(data, str(path)), sha256_bytes(data)

    def source_path(self, record: Record) -> Path:
        return self.root / record.relpath

    def output_relpath(self, record: Record, image_format: str = "same") -> str:
        """Where the degraded image goes, relative to OUT."""
        if image_format == "same":
            return record.relpath
        suffix = ".jpg" if image_format in ("jpg", "jpeg") else "." + image_format
        return str(Path(record.relpath).with_suffix(suffix))

    def output_slot(self, record: Record) -> tuple[str, int, int] | None:
        """For items kept in one shared work file rather than a file each (FER2013 CSV rows: tens
        of thousands of tiny files cost more to create and delete than to compute): (relative path
        of that file, byte offset, size). The item's output is its raw uint8 pixels there."""
        return None

    def virtual_output(self, record: Record) -> str | None:
        """For items stored inside a dataset-level file (FER2013 CSV rows): ``<file>#<row>``."""
        return None

    def label_files(self) -> list[tuple[Path, str]]:
        """(source file, relative path in OUT) of label files copied verbatim into the copy."""
        return []

    def image_flags(self, record: Record, image: np.ndarray) -> list[str]:
        """Anomaly flags for a decoded image (kept, but listed in anomalies.json)."""
        return []

    def finalize_copy(self, out: Path, rows: list[dict]) -> dict[str, str]:
        """Write files of the copy that depend on all items (e.g. a rewritten CSV, split lists).

        Returns {relative path: sha256} of files written, recorded in dataset.json."""
        return {}

    def describe(self) -> dict:
        """Adapter-specific facts for dataset.json (protocol, split rule, …)."""
        return {}

    # -- helpers for subclasses ------------------------------------------------------------------
    def _skip(self, key: str, code: str, detail: str = "") -> None:
        self.skipped.append((key, f"{code}: {detail}" if detail else code))

    @abstractmethod
    def _scan(self) -> list[Record]:
        """Parse the label files and list the records (fill ``self.skipped`` on the way)."""

    @classmethod
    def detect(cls, path: Path) -> bool:
        """True when ``path`` looks like this adapter's layout."""
        return False

    def copy_label_files(self, out: Path) -> list[str]:
        written = []
        for src, rel in self.label_files():
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.copy.tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)
            written.append(rel)
        return written


def skip_code(reason: str) -> str:
    """The short code of a ``"code: detail"`` skip reason."""
    return reason.split(":", 1)[0].strip()
