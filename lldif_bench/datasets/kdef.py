"""KDEF: ``KDEF_and_AKDEF/KDEF/<AF01>/AF01AFS.JPG`` (series, gender, id, expression, angle).

Person = gender + number (``F01``): ``AF01`` and ``BF01`` are one person. AKDEF is ignored. There is
no official split; protocols (shared/design/datasets.md §3.3):

* ``kdef_person80`` (default): person-independent 56/14; persons interleaved by gender after a seeded
  shuffle and dealt into 5 folds, fold 0 = test (gender-balanced, both series on one side);
* ``kdef_random80``: image-level 80/20, seeded, stratified by expression;
* ``kdef_angleS``: straight (S) images are the test split, the other four angles train.

The split is written as ``split_<protocol>.txt`` into the copy and reused from there. Misnamed files
are recovered when exactly one slot of their folder is free; near-black and odd-sized images are
flagged in anomalies.json. Flagged items are kept unless ``exclude_anomalies`` names their kind
(:data:`ANOMALY_KINDS`); an excluded item is recorded as ``skipped:excluded-anomaly`` with its reason,
keeps its place in the split list (the other items' splits do not move) and is not written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from lldif_bench.datasets.base import ADAPTERS, Dataset, SkipItem, sha256_bytes
from lldif_bench.datasets.manifest import EXCLUDED_ANOMALY
from lldif_bench.datasets.record import Record
from lldif_bench.emotions import CANONICAL
from lldif_bench.errors import UserError
from lldif_bench.imageio import atomic_write_bytes, is_image_name
from lldif_bench.registry import Registry

NAME_RE = re.compile(r"^([AB])([FM])(\d{2})(AF|AN|DI|HA|NE|SA|SU)(FL|FR|HL|HR|S)\.jpe?g$", re.IGNORECASE)
FOLDER_RE = re.compile(r"^([AB])([FM])(\d{2})$", re.IGNORECASE)
EXPRESSIONS = ("AF", "AN", "DI", "HA", "NE", "SA", "SU")  # alphabetical: the native order
ANGLES = ("FL", "HL", "S", "HR", "FR")
CODE_TO_CANONICAL = {"SU": "surprise", "AF": "fear", "DI": "disgust", "HA": "happiness", "SA": "sadness",
                     "AN": "anger", "NE": "neutral"}
OFFICIAL_SIZE = (762, 562)  # (H, W)
BLACK_MEAN = 10.0
# flagged anomalies, by kind: found while parsing names (renamed, folder-mismatch) or in the pixels
ANOMALY_KINDS = ("renamed", "folder-mismatch", "near-black", "odd-size")

PROTOCOLS: Registry = Registry("KDEF split protocol")


def _seeded_rng(seed: int, what: str) -> np.random.Generator:
    return np.random.default_rng(int(sha256_bytes(f"{seed}|{what}".encode())[:16], 16))


@PROTOCOLS.register("kdef_person80", help="person-independent 56/14, gender-balanced (default)")
def split_person80(items: list[dict], seed: int) -> dict[str, str]:
    persons = sorted({it["subject"] for it in items})
    rng = _seeded_rng(seed, "kdef_person80")
    by_gender = {g: [p for p in persons if p[0] == g] for g in ("F", "M")}
    shuffled = {g: [ps[i] for i in rng.permutation(len(ps))] for g, ps in by_gender.items()}
    order: list[str] = []
    for i in range(max(len(v) for v in shuffled.values())):
        order += [shuffled[g][i] for g in ("F", "M") if i < len(shuffled[g])]
    test = {p for i, p in enumerate(order) if i % 5 == 0}
    return {it["relpath"]: "test" if it["subject"] in test else "train" for it in items}


@PROTOCOLS.register("kdef_random80", help="image-level 80/20, seeded, stratified by expression")
def split_random80(items: list[dict], seed: int) -> dict[str, str]:
    rng = _seeded_rng(seed, "kdef_random80")
    out: dict[str, str] = {}
    for expr in EXPRESSIONS:
        group = sorted(it["relpath"] for it in items if it["expression"] == expr)
        n_test = round(len(group) * 0.2)
        test = {group[i] for i in rng.permutation(len(group))[:n_test]}
        out.update({rel: "test" if rel in test else "train" for rel in group})
    return out


@PROTOCOLS.register("kdef_angleS", help="straight (S) images = test, other angles = train")
def split_angle_s(items: list[dict], seed: int) -> dict[str, str]:
    return {it["relpath"]: "test" if it["angle"] == "S" else "train" for it in items}


def find_kdef_dir(src: Path) -> Path | None:
    """The folder holding the subject folders (AF01 …): ``src``, ``src/KDEF`` or
    ``src/KDEF_and_AKDEF/KDEF``."""
    for cand in (src / "KDEF_and_AKDEF" / "KDEF", src / "KDEF", src):
        if cand.is_dir() and any(FOLDER_RE.match(p.name) and p.is_dir() for p in cand.iterdir()):
            return cand
    return None


@ADAPTERS.register("kdef", help="KDEF (KDEF_and_AKDEF/KDEF/<AF01>/AF01AFS.JPG)")
class Kdef(Dataset):
    name = "kdef"
    layout_hint = "KDEF_and_AKDEF/KDEF/AF01/AF01AFS.JPG"

    def __init__(self, root: Path, protocol: str = "kdef_person80", split_seed: int = 0,
                 split_file: str | None = None, exclude_anomalies=(), **options) -> None:
        src = Path(root)
        exclude = parse_anomaly_kinds(exclude_anomalies)
        if exclude:  # recorded only when used, so earlier builds keep their settings
            options["exclude_anomalies"] = list(exclude)
        kdef_dir = find_kdef_dir(src)
        if kdef_dir is None:
            raise UserError(f"{src} is not a KDEF folder: expected {src}/KDEF/AF01/AF01AFS.JPG "
                            f"(subject folders AF01…BM35), or {src}/KDEF_and_AKDEF/KDEF/…")
        PROTOCOLS.get(protocol)
        super().__init__(kdef_dir.parent, protocol=protocol, split_seed=split_seed, **options)
        self.kdef_dir = kdef_dir
        self.protocol = protocol
        self.split_seed = int(split_seed)
        self.split_file = Path(split_file) if split_file else self.root / self.split_file_name
        self.exclude_anomalies = exclude
        self._splits: dict[str, str] = {}

    @property
    def split_file_name(self) -> str:
        return f"split_{self.protocol}.txt"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return find_kdef_dir(Path(path)) is not None

    @property
    def native_class_names(self) -> list[str]:
        return list(EXPRESSIONS)

    def source_path(self, record: Record) -> Path:
        return self.kdef_dir / Path(record.relpath).relative_to("KDEF")

    def _parse_folder(self, folder: Path) -> list[dict]:
        items: dict[tuple[str, str], dict] = {}
        unparsed: list[str] = []
        fm = FOLDER_RE.match(folder.name)
        for name in _file_names(folder):
            rel = f"KDEF/{folder.name}/{name}"
            if not is_image_name(name):
                self._skip(rel, "not-an-image", f"{rel}: file name is not an image type")
                continue
            m = NAME_RE.match(name)
            if not m:
                unparsed.append(name)
                continue
            series, gender, number, expr, angle = (g.upper() for g in m.groups())
            if fm and (series + gender + number) != folder.name.upper():
                self.anomalies.append({"relpath": rel, "kind": "folder-mismatch",
                                       "detail": f"name says {series}{gender}{number}, folder {folder.name}"})
            slot = (expr, angle)
            if slot in items:
                raise UserError(f"KDEF folder {folder} has two files for {expr}{angle}: "
                                f"{items[slot]['relpath'].rsplit('/', 1)[1]} and {name}; remove one")
            items[slot] = {"relpath": rel, "series": series, "gender": gender, "number": number,
                           "expression": expr, "angle": angle}
        free = [(e, a) for e in EXPRESSIONS for a in ANGLES if (e, a) not in items]
        if len(unparsed) == 1 and len(free) == 1 and fm:
            name, (expr, angle) = unparsed[0], free[0]
            series, gender, number = (g.upper() for g in fm.groups())
            rel = f"KDEF/{folder.name}/{name}"
            items[(expr, angle)] = {"relpath": rel, "series": series, "gender": gender, "number": number,
                                    "expression": expr, "angle": angle}
            self.anomalies.append({"relpath": rel, "kind": "renamed",
                                   "detail": f"unparseable name assigned to the only free slot {expr}{angle}"})
        else:
            for name in unparsed:
                rel = f"KDEF/{folder.name}/{name}"
                self._skip(rel, "unparseable-name",
                           f"{rel}: not <A|B><F|M><NN><expr><angle>.JPG and no single free slot to assign")
        return list(items.values())

    def _scan(self) -> list[Record]:
        items: list[dict] = []
        for folder in sorted(p for p in self.kdef_dir.iterdir() if p.is_dir()):
            if not FOLDER_RE.match(folder.name):
                self._skip(f"KDEF/{folder.name}/", "unknown-folder",
                           f"{folder.name}: not a KDEF subject folder (AF01…BM35)")
                continue
            items += self._parse_folder(folder)
        if not items:
            raise UserError(f"no KDEF images found in {self.kdef_dir}")
        for it in items:
            it["subject"] = it["gender"] + it["number"]
        self._splits = self._load_or_make_split(items)
        records = []
        for it in sorted(items, key=lambda d: d["relpath"]):
            split = self._splits.get(it["relpath"])
            if split is None:
                self._skip(it["relpath"], "not-in-split-file", f"{it['relpath']}: missing from {self.split_file}")
                continue
            label = CANONICAL.index(CODE_TO_CANONICAL[it["expression"]])
            records.append(Record(relpath=it["relpath"], label=label, split=split,
                                  native_label=it["expression"], subject=it["subject"], angle=it["angle"],
                                  extra={"series": it["series"]}))
        return records

    def _load_or_make_split(self, items: list[dict]) -> dict[str, str]:
        if self.split_file.is_file():
            split: dict[str, str] = {}
            for line in self.split_file.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] in ("train", "test"):
                    split[parts[0]] = parts[1]
            return split
        return PROTOCOLS.get(self.protocol)(items, self.split_seed)

    def split_text(self) -> str:
        self.records()
        return "".join(f"{rel} {split}\n" for rel, split in sorted(self._splits.items()))

    def _anomalies_of(self) -> dict[str, list[dict]]:
        """Parse-time anomalies by relpath (built once: a look-up per item, not a scan)."""
        self._scanned()
        if getattr(self, "_anomaly_index", None) is None or self._anomaly_index[0] is not self.anomalies:
            by_rel: dict[str, list[dict]] = {}
            for a in self.anomalies:
                by_rel.setdefault(a["relpath"], []).append(a)
            self._anomaly_index = (self.anomalies, by_rel)
        return self._anomaly_index[1]

    def image_anomalies(self, image: np.ndarray) -> list[tuple[str, str]]:
        """(kind, text) of what is odd about an image's pixels."""
        found = []
        mean = float(image.mean())
        if mean < BLACK_MEAN:
            found.append(("near-black", f"near-black (mean {mean:.1f} < {BLACK_MEAN:g})"))
        if image.shape[:2] != OFFICIAL_SIZE:
            found.append(("odd-size", f"size {image.shape[1]}x{image.shape[0]}, not 562x762"))
        return found

    def image_flags(self, record: Record, image: np.ndarray) -> list[str]:
        return [text for _, text in self.image_anomalies(image)]

    def read_source(self, record: Record) -> tuple[np.ndarray, str]:
        """The image and its hash; an anomaly of an excluded kind makes it a skip with the reason."""
        image, sha = super().read_source(record)
        if self.exclude_anomalies:
            found = [(a["kind"], a["detail"]) for a in self._anomalies_of().get(record.relpath, ())]
            found += self.image_anomalies(image)
            reasons = [f"{kind}: {text}" for kind, text in found if kind in self.exclude_anomalies]
            if reasons:
                raise SkipItem(EXCLUDED_ANOMALY, f"{record.relpath}: excluded anomaly ({'; '.join(reasons)})")
        return image, sha

    def finalize_copy(self, out: Path, rows: list[dict]) -> dict[str, str]:
        data = self.split_text().encode()
        atomic_write_bytes(out / self.split_file_name, data)
        return {self.split_file_name: sha256_bytes(data)}

    def describe(self) -> dict:
        return {"protocol": self.protocol, "protocol_help": PROTOCOLS.help(self.protocol),
                "exclude_anomalies": list(self.exclude_anomalies),
                "split_seed": self.split_seed, "split_file": self.split_file_name,
                "native_order": list(EXPRESSIONS),
                "native_to_canonical": {c: CODE_TO_CANONICAL[c] for c in EXPRESSIONS}}


def _file_names(folder: Path) -> list[str]:
    """Sorted names of the regular files in ``folder``: one ``os.scandir``, no ``Path`` and no
    ``stat`` per file (the directory entry's type answers ``is_file``)."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_file())


def parse_anomaly_kinds(kinds) -> tuple[str, ...]:
    """``"near-black,renamed"``, ``"all"``, ``"none"`` or a sequence of kinds -> the kinds, in
    :data:`ANOMALY_KINDS` order; an unknown kind is a :class:`UserError`."""
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    kinds = set(kinds or ())
    if "all" in kinds:
        return ANOMALY_KINDS
    kinds.discard("none")
    unknown = sorted(kinds - set(ANOMALY_KINDS))
    if unknown:
        raise UserError(f"unknown KDEF anomaly kind {', '.join(unknown)}; choose from "
                        f"{', '.join(ANOMALY_KINDS)}, all or none")
    return tuple(k for k in ANOMALY_KINDS if k in kinds)
