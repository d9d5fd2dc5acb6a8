"""FER2013 + FERPlus: Kaggle's ``fer2013.csv`` (or ``icml_face_data.csv``) with FER+'s
``fer2013new.csv`` votes, or the PNG folders FER+'s own script generates
(``data/FER2013{Train,Valid,Test}/label.csv`` + ``fer*.png``).

CSV rows are virtual items keyed ``fer2013.csv#<row>`` (0-based data row); their images are the
48×48 grey pixels (C = 1). The low-light copy of a CSV source is a new ``fer2013.csv`` with the same
header, row order and Usage column and darkened pixels, beside the unchanged ``fer2013new.csv``.
Protocols: :mod:`lldif_bench.datasets.ferplus_labels`. Grey images have no white balance: the
degradation core applies its luminance ops only and keeps one channel.
"""

from __future__ import annotations

import csv
import hashlib
import io
import operator
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lldif_bench.datasets.base import (
    ADAPTERS,
    WORK_DIR,
    Dataset,
    DirIndex,
    class_names_for,
    sha256_bytes,
)
from lldif_bench.datasets.ferplus_labels import (
    FER2013_NAMES,
    FERPLUS_COLUMNS,
    PROTOCOLS,
    REAL_COUNTS,
    USAGES,
    VOTE_SOURCES,
    WHY_COUNTS_DIFFER,
    Labelled,
    label_fer2013_rows,
    parse_votes,
)
from lldif_bench.datasets.record import Record
from lldif_bench.errors import UserError
from lldif_bench.imageio import atomic_writer

CSV_CANDIDATES = ("fer2013.csv", "fer2013/fer2013.csv", "icml_face_data.csv", "fer2013/icml_face_data.csv")
NEW_CANDIDATES = ("fer2013new.csv", "FERPlus/fer2013new.csv", "FERPlus-master/fer2013new.csv")
DATA_CANDIDATES = ("data", "FERPlus/data", "FERPlus-master/data", "")
FOLDERS = {"FER2013Train": "Training", "FER2013Valid": "PublicTest", "FER2013Test": "PrivateTest"}
UNLABELLED = ("test.csv", "fer2013/test.csv", "train.csv", "fer2013/train.csv")
ROW_KEY = "fer2013.csv#"
ROWS_FILE = f"{WORK_DIR}/rows.u8"  # the low-light pixels of every row, 2,304 bytes a row
SIDE = 48


def _first(root: Path, candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if (root / c).is_file()), None)


def _data_dir(root: Path) -> str | None:
    for c in DATA_CANDIDATES:
        base = root / c if c else root
        if any((base / f / "label.csv").is_file() for f in FOLDERS):
            return c
    return None


def _csv_shape(path: Path) -> tuple[int, str, str]:
    """(number of lines, first line without its line end, line end) of a text file, read in blocks."""
    with open(path, "rb") as f:
        first = f.readline()
        lines, last = first.count(b"\n"), first[-1:]
        for block in iter(lambda: f.read(1 << 22), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += bool(last) and last != b"\n"  # a last line without a line end
    newline = "\r\n" if first.endswith(b"\r\n") else "\n"
    return lines, first.decode("utf-8-sig", errors="replace").rstrip("\r\n"), newline


def _read_text(path: Path) -> tuple[str, str]:
    raw = path.read_bytes().decode("utf-8-sig", errors="replace")
    newline = "\r\n" if "\r\n" in raw[:200_000] else "\n"
    return raw, newline


@ADAPTERS.register("ferplus", help="FER2013 fer2013.csv + FERPlus fer2013new.csv (or FER+ PNG folders)")
class FerPlus(Dataset):
    name = "ferplus"
    aligned_faces = True  # 48x48 face crops
    layout_hint = "fer2013.csv (or fer2013/fer2013.csv) and fer2013new.csv (or FERPlus/fer2013new.csv)"

    def __init__(self, root: Path, protocol: str = "ferplus_lldif", include_valid: bool = False,
                 votes: str = "auto", **options) -> None:
        root = Path(root)
        self.protocol = PROTOCOLS.get(protocol)
        if votes not in VOTE_SOURCES:
            raise UserError(f"--votes must be one of {', '.join(VOTE_SOURCES)}, got {votes!r}")
        if votes != "auto":  # recorded only when chosen, so earlier builds keep their settings
            options["votes"] = votes
        self.csv_rel = _first(root, CSV_CANDIDATES)
        self.new_rel = _first(root, NEW_CANDIDATES)
        self.data_rel = _data_dir(root)
        if self.csv_rel is None and self.data_rel is None:
            unlabelled = _first(root, UNLABELLED)
            if unlabelled and "emotion" not in _header(root / unlabelled):
                raise UserError(f"{root / unlabelled} has no labels (Kaggle's unlabelled test set); point "
                                f"--src at the folder holding fer2013.csv or icml_face_data.csv")
            raise UserError(f"{root} is not a FER2013/FERPlus folder: expected {root}/fer2013.csv (or "
                            f"fer2013/fer2013.csv, icml_face_data.csv) with FERPlus/fer2013new.csv, or "
                            f"FER+'s {root}/data/FER2013Train/label.csv")
        if self.csv_rel is None and self.protocol.needs_fer2013:
            raise UserError(f"protocol {protocol} needs the original labels: expected {root}/fer2013.csv")
        if self.csv_rel is not None and self.protocol.needs_votes and self.new_rel is None:
            raise UserError(f"protocol {protocol} needs FER+ votes: expected {root}/fer2013new.csv or "
                            f"{root}/FERPlus/fer2013new.csv (from github.com/microsoft/FERPlus); "
                            f"or use --protocol fer2013_orig7")
        if votes == "label-csv" and self.data_rel is None:
            raise UserError(f"--votes label-csv needs FER+'s label.csv files beside the CSV: expected "
                            f"{root}/data/FER2013Train/label.csv (or FERPlus/data/…, from "
                            f"github.com/microsoft/FERPlus)")
        if votes == "fer2013new" and self.csv_rel is None:
            raise UserError("--votes fer2013new needs fer2013.csv: the PNG folder layout takes its votes "
                            "from its label.csv files")
        super().__init__(root, protocol=protocol, include_valid=bool(include_valid), **options)
        self.include_valid = bool(include_valid)
        self.layout = "csv" if self.csv_rel else "images"
        self.votes = votes
        self._pixels: np.ndarray | None = None
        self._csv_header = ""
        self._csv_newline = "\n"
        self._csv_rows: list[list[str]] = []  # the non-pixel fields of each data row
        self._bad_rows: set[int] = set()
        self._pixel_col = 1

    @classmethod
    def detect(cls, path: Path) -> bool:
        path = Path(path)
        return _first(path, CSV_CANDIDATES) is not None or _data_dir(path) is not None

    @property
    def class_names(self) -> list[str]:
        return class_names_for(self.protocol.n_classes)

    @property
    def native_class_names(self) -> list[str]:
        if self.protocol.name == "fer2013_orig7":
            return list(FER2013_NAMES)
        names = list(FERPLUS_COLUMNS[:8])
        return names if self.protocol.n_classes == 8 else [n for n in names if n != "contempt"]

    # -- parsing ---------------------------------------------------------------------------------
    def _scan(self) -> list[Record]:
        return self._scan_csv() if self.layout == "csv" else self._scan_images()

    def _new_rows(self) -> list[tuple[str, str | None, list[int] | None]]:
        """(usage, image name or None, votes or None) per fer2013new.csv row, both header variants."""
        if self.new_rel is None:
            return []
        text, _ = _read_text(self.root / self.new_rel)
        reader = csv.reader(io.StringIO(text))
        header = [h.strip() for h in next(reader, [])]
        has_name = len(header) > 1 and header[1].lower() == "image name"
        if not header or header[0] != "Usage":
            raise UserError(f"{self.root / self.new_rel}: expected a header starting with 'Usage', got {header}")
        out = []
        for lineno, fields in enumerate(reader, start=2):
            if not fields:
                continue
            name = fields[1].strip() if has_name and len(fields) > 1 else None
            try:
                votes = parse_votes(fields[2:] if has_name else fields[1:])
            except ValueError as err:
                self._skip(f"{self.new_rel}:{lineno}", "malformed-label", f"line {lineno}: {err}")
                votes = None
            out.append((fields[0].strip(), name, votes))
        return out

    def _label_csv_votes(self) -> dict[str, dict[str, tuple[int, ...]]]:
        """folder → {image name: votes} from FER+'s label.csv files (no header). The 35,710 real
        rows hold ~5,600 distinct vote patterns: each is parsed once and its tuple shared."""
        found: dict[str, dict[str, tuple[int, ...]]] = {}
        if self.data_rel is None:
            return found
        base = self.root / self.data_rel if self.data_rel else self.root
        parsed: dict[tuple[str, ...], tuple[int, ...]] = {}
        for folder in FOLDERS:
            path = base / folder / "label.csv"
            if not path.is_file():
                continue
            rel = str(path.relative_to(self.root))
            votes: dict[str, tuple[int, ...]] = {}
            for lineno, fields in enumerate(csv.reader(io.StringIO(_read_text(path)[0])), start=1):
                if not fields:
                    continue
                try:
                    if len(fields) != 12:
                        raise ValueError(f"expected 12 fields (name, box, 10 votes), got {len(fields)}")
                    votes[fields[0].strip()] = _parsed_votes(tuple(fields[2:]), parsed)
                except ValueError as err:
                    self._skip(f"{rel}:{lineno}", "malformed-label", f"line {lineno}: {err}")
            found[folder] = votes
        return found

    def votes_from(self) -> str:
        """Which file the votes come from: ``label.csv`` or ``fer2013new.csv`` (or ``none``)."""
        if self.layout == "images":
            return "label.csv"
        if not self.protocol.needs_votes:
            return "none"
        if self.votes == "label-csv" or (self.votes == "auto" and self.protocol.per_image
                                         and self.data_rel is not None):
            return "label.csv"
        return "fer2013new.csv"

    def real_counts(self) -> dict[str, int] | None:
        """Train/test images this protocol gives on the full real FER+ files with this layout and
        vote source (None where not tabulated: fer2013_orig7 needs no votes, 28,709 / 7,178)."""
        if self.protocol.name == "fer2013_orig7":
            return {"train": 28_709, "test": 7_178}
        table = REAL_COUNTS.get((self.layout, self.votes_from()), {})
        found = table.get((self.protocol.name, self.include_valid)) or table.get((self.protocol.name, False))
        return None if found is None else {"train": found[0], "test": found[1]}

    def _scan_csv(self) -> list[Record]:
        """Stream ``fer2013.csv`` once: pixels into one uint8 array (83 MB for the real file), the
        other fields kept per row; the file's text is never held whole (it is 300 MB)."""
        path = self.root / self.csv_rel
        n_lines, self._csv_header, self._csv_newline = _csv_shape(path)
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            reader = csv.reader(f)
            raw_header = next(reader, None)
            if raw_header is None:
                raise UserError(f"{path} is empty")
            header = [h.strip() for h in raw_header]
            missing = {"emotion", "pixels", "Usage"} - set(header)
            if missing:
                raise UserError(f"{path}: header {header} lacks {sorted(missing)}; expected emotion,pixels,Usage "
                                f"(fer2013.csv) or emotion, Usage, pixels (icml_face_data.csv)")
            col = {h: i for i, h in enumerate(header)}
            self._pixel_col = col["pixels"]
            pixels = np.zeros((max(n_lines - 1, 0), SIDE, SIDE, 1), np.uint8)
            rows: list[tuple[int, str] | None] = []
            self._csv_rows, self._bad_rows = [], set()
            for fields in reader:
                if not fields:  # blank line
                    continue
                i = len(rows)
                try:
                    emotion, usage = self._parse_row(fields, header, col, pixels[i, :, :, 0])
                except ValueError as err:
                    self._skip(f"{ROW_KEY}{i}", "malformed-label", f"{self.csv_rel} data row {i}: {err}")
                    self._bad_rows.add(i)
                    self._csv_rows.append(fields)
                    rows.append(None)
                    continue
                self._csv_rows.append([x if j != self._pixel_col else "" for j, x in enumerate(fields)])
                rows.append((emotion, usage))
        new_rows = self._new_rows()
        if new_rows and len(new_rows) < len(rows):
            raise UserError(f"{self.new_rel} has {len(new_rows)} rows but {self.csv_rel} has {len(rows)}; "
                            f"they must hold the same images in the same order")
        # fewer fer2013.csv rows than votes: a copy made with --limit (a prefix of the rows)
        label_votes = None
        if self.votes_from() == "label.csv":
            label_votes = {FOLDERS[folder]: v for folder, v in self._label_csv_votes().items()}
        records: list[Record] = []
        labelled = label_fer2013_rows(rows, new_rows, self.protocol, self.include_valid, label_votes)
        for i, (row, found) in enumerate(zip(rows, labelled)):
            if found is None:
                continue
            lab, name = found
            extra = {"row": i, "usage": row[1], "image_name": name}
            if lab.excluded:
                self._extra.append(Record(relpath=f"{ROW_KEY}{i}", label=-1, split="unused",
                                          native_label=lab.excluded, extra=extra))
            else:
                records.append(Record(relpath=f"{ROW_KEY}{i}", label=lab.label, split=lab.split,
                                      native_label=lab.native, extra=extra))
        self._pixels = pixels[: len(rows)]
        return records

    def _parse_row(self, fields: list[str], header: list[str], col: dict[str, int],
                   out: np.ndarray) -> tuple[int, str]:
        """Check one data row and write its pixels into ``out``; ValueError says what is wrong."""
        if len(fields) != len(header):
            raise ValueError(f"expected {len(header)} fields, got {len(fields)}")
        emotion = int(fields[col["emotion"]])
        if not 0 <= emotion <= 6:
            raise ValueError(f"emotion {emotion} is not 0..6")
        usage = fields[col["Usage"]].strip()
        if usage not in USAGES:
            raise ValueError(f"Usage {usage!r} is not one of {', '.join(USAGES)}")
        try:
            with warnings.catch_warnings():  # numpy < 2.3 only warns (and stops) at a non-number
                warnings.simplefilter("error", DeprecationWarning)
                values = np.fromstring(fields[self._pixel_col], dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning):
            raise ValueError(f"pixels: expected {SIDE * SIDE} integers 0..255, found text that is not "
                             f"a number") from None
        if values.size != SIDE * SIDE:
            raise ValueError(f"pixels: expected {SIDE * SIDE} integers 0..255, got {values.size}")
        if values.min() < 0 or values.max() > 255:
            raise ValueError(f"pixels: expected {SIDE * SIDE} integers 0..255, got values "
                             f"{values.min()}..{values.max()}")
        out[...] = values.reshape(SIDE, SIDE)
        return emotion, usage

    def _scan_images(self) -> list[Record]:
        """Records of FER+'s PNG folders: each label.csv row whose image exists, and a skip for each
        file a folder holds that its label.csv does not list. Each folder is listed once, so this
        is linear in the number of files (35,710 in the real layout)."""
        if self.protocol.needs_fer2013:
            raise UserError(f"protocol {self.protocol.name} needs {self.root}/fer2013.csv")
        records: list[Record] = []
        index = DirIndex()
        for folder, votes in self._label_csv_votes().items():
            prefix = f"{self.data_rel}/{folder}" if self.data_rel else folder
            folder_path = self.root / prefix
            on_disk = index.names(folder_path)
            label_of = self._labels_of_patterns(votes.values(), FOLDERS[folder])
            for name, v in votes.items():
                found = name if name in on_disk else index.find_name(folder_path, name)
                if found is None:
                    self._skip(f"{prefix}/{name}", "missing-file", f"{folder_path / name}: listed in {prefix}/label.csv")
                    continue
                lab = label_of[v]
                if lab.excluded:
                    self._extra.append(Record(relpath=f"{prefix}/{found}", label=-1, split="unused",
                                              native_label=lab.excluded))
                else:
                    records.append(Record(relpath=f"{prefix}/{found}", label=lab.label, split=lab.split,
                                          native_label=lab.native))
            for name in _unlisted(on_disk, votes):
                rel = f"{prefix}/{name}"
                self._skip(rel, "not-in-label-file", f"{rel}: not listed in {prefix}/label.csv")
        records.sort(key=_relpath)
        self._extra.sort(key=_relpath)
        return records

    def _labels_of_patterns(self, votes: Iterable[tuple[int, ...]], usage: str) -> dict[tuple[int, ...], Labelled]:
        """The protocol's outcome for each distinct vote pattern of one folder (no FER2013 label),
        computed once: the real folders' 35,710 images share ~5,600 patterns."""
        return {v: self.protocol.rule(None, v, usage, self.include_valid) for v in set(votes)}

    def build_records(self) -> list[Record]:
        items = super().build_records()
        if self.layout == "csv":
            items.sort(key=self._row)  # row order, so a --limit prefix is a prefix of the CSV
        return items

    # -- images ----------------------------------------------------------------------------------
    def _row(self, record: Record) -> int:
        return int(record.relpath[len(ROW_KEY):])

    def load(self, record: Record) -> np.ndarray:
        if self.layout == "images":
            return super().load(record)
        self._scanned()
        return self._pixels[self._row(record)].copy()

    def read_source(self, record: Record) -> tuple[np.ndarray, str]:
        if self.layout == "images":
            return super().read_source(record)
        self._scanned()
        img = self._pixels[self._row(record)]
        return img.copy(), sha256_bytes(img.tobytes())

    def output_relpath(self, record: Record, image_format: str = "same") -> str:
        if self.layout == "images":
            return super().output_relpath(record, image_format)
        return ROWS_FILE  # assembled into the CSV at the end

    def output_slot(self, record: Record) -> tuple[str, int, int] | None:
        """CSV rows: 2,304 raw pixel bytes each, at ``row × 2,304`` of one work file."""
        if self.layout == "images":
            return None
        return ROWS_FILE, self._row(record) * SIDE * SIDE, SIDE * SIDE

    def virtual_output(self, record: Record) -> str | None:
        return f"{self.csv_rel}#{self._row(record)}" if self.layout == "csv" else None

    def label_files(self) -> list[tuple[Path, str]]:
        files = []
        if self.new_rel:
            files.append((self.root / self.new_rel, self.new_rel))
        if self.data_rel is not None:
            base = self.root / self.data_rel if self.data_rel else self.root
            for folder in FOLDERS:
                path = base / folder / "label.csv"
                if path.is_file():
                    rel = str(path.relative_to(self.root))
                    files.append((path, rel))
        return files

    def finalize_copy(self, out: Path, rows: list[dict]) -> dict[str, str]:
        """The low-light ``fer2013.csv``, written row by row (never held whole) beside its hash."""
        if self.layout != "csv":
            return {}
        done = {int(r["key"][len(ROW_KEY):]) for r in rows if r["status"] == "ok"}
        last = max((int(r["key"][len(ROW_KEY):]) for r in rows if r["key"].startswith(ROW_KEY)), default=-1)
        for i in range(last + 1):
            if i not in done and i not in self._bad_rows:
                raise UserError(f"cannot assemble {self.csv_rel}: row {i} has no low-light image")
        sha = hashlib.sha256()
        size = SIDE * SIDE
        pixels = np.memmap(out / ROWS_FILE, dtype=np.uint8, mode="r") if done else np.zeros(0, np.uint8)
        with atomic_writer(out / self.csv_rel) as f:
            def put(text: str) -> None:
                data = text.encode()
                sha.update(data)
                f.write(data)

            put(self._csv_header + self._csv_newline)
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator=self._csv_newline)
            for i in range(last + 1):
                fields = list(self._csv_rows[i])
                if i in done:
                    fields[self._pixel_col] = " ".join(map(str, pixels[i * size:(i + 1) * size].tolist()))
                writer.writerow(fields)
                if buf.tell() > 1 << 20 or i == last:
                    put(buf.getvalue())
                    buf.seek(0)
                    buf.truncate()
            del pixels
        return {self.csv_rel: sha.hexdigest()}

    def describe(self) -> dict:
        return {"protocol": self.protocol.name, "protocol_help": PROTOCOLS.help(self.protocol.name),
                "layout": self.layout, "fer2013_csv": self.csv_rel, "fer2013new_csv": self.new_rel,
                "votes_from": self.votes_from(),
                "counts_on_the_real_files": self.real_counts(), "why_counts_differ": WHY_COUNTS_DIFFER,
                "include_valid": self.include_valid, "native_order": self.native_class_names,
                "grey": "48x48 single channel; white balance is not applied to grey images"}


_relpath = operator.attrgetter("relpath")


def _parsed_votes(fields: tuple[str, ...], parsed: dict[tuple[str, ...], tuple[int, ...]]) -> tuple[int, ...]:
    """The votes of 10 text fields, parsed once per distinct pattern (``parsed`` remembers them);
    ValueError as :func:`parse_votes`."""
    votes = parsed.get(fields)
    if votes is None:
        votes = parsed[fields] = tuple(parse_votes(list(fields)))
    return votes


def _unlisted(on_disk: frozenset[str], listed: dict[str, object]) -> list[str]:
    """Sorted names of the files in a folder that its label.csv does not list, neither by name
    nor by stem (a copy made with ``--image-format`` changes suffixes); ``label.csv`` itself is
    not an image. Stems are computed only for the few files whose exact name is not listed."""
    others = [name for name in on_disk if name not in listed and name != "label.csv"]
    if not others:
        return []
    stems = {os.path.splitext(name)[0] for name in listed}
    return sorted(name for name in others if os.path.splitext(name)[0] not in stems)


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        return [h.strip() for h in next(csv.reader(f), [])]

