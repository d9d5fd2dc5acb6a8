"""FER2013 / FER+ label rules: the four protocols and the vote parsing (no file layout here).

Vote columns (both ``fer2013new.csv`` and ``label.csv``): neutral, happiness, surprise, sadness,
anger, disgust, fear, contempt, unknown, NF. FER2013's ``emotion``: 0 Angry … 6 Neutral.
See shared/design/datasets.md §2.3–2.4.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lldif_bench.emotions import canonical_index
from lldif_bench.registry import Registry

FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                   "unknown", "NF")
FERPLUS_EMOTIONS = FERPLUS_COLUMNS[:8]
FER2013_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
USAGES = ("Training", "PublicTest", "PrivateTest")
# where the CSV layout takes its votes from: auto = label.csv beside the CSV for the majority
# protocols when present, else fer2013new.csv
VOTE_SOURCES = ("auto", "label-csv", "fer2013new")


@dataclass(frozen=True)
class Labelled:
    """The outcome for one image: a canonical label and split, or an exclusion reason."""

    label: int | None
    split: str | None
    native: str
    excluded: str = ""  # reason code when label/split is None


@dataclass(frozen=True)
class Protocol:
    name: str
    n_classes: int
    needs_votes: bool
    needs_fer2013: bool
    rule: Callable[[int | None, list[int] | None, str, bool], Labelled]
    per_image: bool = False  # counts FER+ images (one per image name), not FER2013 rows


PROTOCOLS: Registry[Protocol] = Registry("FER protocol")

# (train, test) images each protocol gives on the real FER+ files (35,887 fer2013.csv rows; the
# label.csv files of FER+'s data/), by (layout, where the votes come from), (protocol, include_valid).
# tests/test_datasets_ferplus_real.py recomputes every entry from the real files.
REAL_COUNTS: dict[tuple[str, str], dict[tuple[str, bool], tuple[int, int]]] = {
    ("csv", "fer2013new.csv"): {
        ("ferplus_lldif", False): (28_709, 7_178), ("ferplus_majority8", False): (25_057, 3_152),
        ("ferplus_majority8", True): (28_256, 3_152), ("ferplus_majority7", False): (24_938, 3_136),
        ("ferplus_majority7", True): (28_124, 3_136)},
    ("csv", "label.csv"): {
        ("ferplus_lldif", False): (28_709, 7_178), ("ferplus_majority8", False): (25_045, 3_137),
        ("ferplus_majority8", True): (28_236, 3_137), ("ferplus_majority7", False): (24_925, 3_122),
        ("ferplus_majority7", True): (28_100, 3_122)},
    ("images", "label.csv"): {
        ("ferplus_lldif", False): (28_556, 7_152), ("ferplus_majority8", False): (25_045, 3_137),
        ("ferplus_majority8", True): (28_236, 3_137), ("ferplus_majority7", False): (24_925, 3_122),
        ("ferplus_majority7", True): (28_100, 3_122)},
}
WHY_COUNTS_DIFFER = (
    "Papers quote 25,045 train / 3,137 test (FER+ majority, 8 classes): FER+'s label.csv files give them. "
    "fer2013new.csv's votes differ from label.csv for 1,602 images, so a CSV build that takes its votes "
    "from fer2013new.csv gives 25,057 / 3,152 (put FER+'s data/FER2013*/label.csv beside the CSV, or "
    "pass --votes label-csv, to reproduce the quoted counts). The PNG folders hold one image per name: "
    "no image for the 173 rows without a name, one for each of the 4 names that occur twice; "
    "ferplus_lldif keeps every FER2013 row of the CSV (28,709 / 7,178, as the paper) but on the folders "
    "keeps the 35,708 images with at least one emotion vote (28,556 / 7,152).")


def majority_winner(votes: list[int]) -> int | None:
    """FER+ majority rule (src/ferplus.py): drop single votes, the winner needs > half of the rest."""
    kept = [v if v > 1 else 0 for v in votes]
    total = sum(kept)
    if total == 0:
        return None
    best = max(range(len(kept)), key=lambda i: (kept[i], -i))
    return best if kept[best] > 0.5 * total else None


def plurality_emotion(votes: list[int]) -> int | None:
    """Largest of the 8 emotion counts, ties to the first column; None when all are zero."""
    emo = votes[:8]
    if sum(emo) == 0:
        return None
    return max(range(8), key=lambda i: (emo[i], -i))


def _split_lldif(usage: str, include_valid: bool) -> str:
    return "train" if usage == "Training" else "test"


def _split_majority(usage: str, include_valid: bool) -> str | None:
    if usage == "Training":
        return "train"
    if usage == "PublicTest":
        return "train" if include_valid else None
    return "test"


def _rule_lldif(orig: int | None, votes: list[int] | None, usage: str, include_valid: bool) -> Labelled:
    split = _split_lldif(usage, include_valid)
    win = plurality_emotion(votes) if votes is not None else None
    if win is not None:
        return Labelled(canonical_index(FERPLUS_EMOTIONS[win]), split, FERPLUS_EMOTIONS[win])
    if orig is not None:
        return Labelled(canonical_index(FER2013_NAMES[orig]), split, f"fer2013:{FER2013_NAMES[orig]}")
    return Labelled(None, None, "", "no-emotion-votes")


def _majority(orig, votes, usage, include_valid, drop_contempt: bool) -> Labelled:
    if votes is None:
        return Labelled(None, None, "", "no-votes")
    win = majority_winner(votes)
    if win is None:
        return Labelled(None, None, "", "no-majority")
    if win >= 8:
        return Labelled(None, None, FERPLUS_COLUMNS[win], f"majority-{FERPLUS_COLUMNS[win].lower()}")
    if drop_contempt and FERPLUS_EMOTIONS[win] == "contempt":
        return Labelled(None, None, "contempt", "contempt-dropped")
    split = _split_majority(usage, include_valid)
    if split is None:
        return Labelled(None, None, FERPLUS_EMOTIONS[win], "valid-split")
    return Labelled(canonical_index(FERPLUS_EMOTIONS[win]), split, FERPLUS_EMOTIONS[win])


def _rule_orig7(orig, votes, usage, include_valid) -> Labelled:
    return Labelled(canonical_index(FER2013_NAMES[orig]), _split_lldif(usage, include_valid), FER2013_NAMES[orig])


PROTOCOLS.add("ferplus_lldif", Protocol("ferplus_lldif", 8, True, False, _rule_lldif),
              help="paper counts 28,709/7,178: every FER2013 row, FER+ plurality label (8 classes)")
PROTOCOLS.add("ferplus_majority8", Protocol(
    "ferplus_majority8", 8, True, False, lambda o, v, u, iv: _majority(o, v, u, iv, False), per_image=True),
    help="canonical FER+ majority vote, 8 classes (Train/Test; --include-valid adds Valid to train)")
PROTOCOLS.add("ferplus_majority7", Protocol(
    "ferplus_majority7", 7, True, False, lambda o, v, u, iv: _majority(o, v, u, iv, True), per_image=True),
    help="FER+ majority vote with contempt dropped, 7 classes")
PROTOCOLS.add("fer2013_orig7", Protocol("fer2013_orig7", 7, False, True, _rule_orig7),
              help="original FER2013 labels, Training / PublicTest+PrivateTest")


def parse_votes(fields: list[str]) -> list[int]:
    """10 vote counts from text fields; ValueError when they are not 10 non-negative integers."""
    if len(fields) != 10:
        raise ValueError(f"expected 10 vote counts, got {len(fields)}")
    votes = [int(f) for f in fields]
    if any(v < 0 for v in votes):
        raise ValueError("negative vote count")
    return votes


def label_fer2013_rows(rows: Sequence[tuple[int, str] | None],
                       new_rows: Sequence[tuple[str, str | None, list[int] | None]],
                       protocol: Protocol, include_valid: bool = False,
                       label_votes: dict[str, dict[str, list[int]]] | None = None,
                       ) -> list[tuple[Labelled, str] | None]:
    """The label of every ``fer2013.csv`` row (the CSV layout), and the row's FER+ image name.

    ``rows``: per data row ``(emotion 0..6, Usage)``, or ``None`` for a malformed row (which stays
    ``None``). ``new_rows``: ``fer2013new.csv``'s rows in the same order, ``(Usage, image name or
    None for the 2016 header, votes or None)``; empty when the protocol needs no votes.
    ``label_votes``: ``{Usage: {image name: votes}}`` from FER+'s ``label.csv`` files; when given,
    a named row takes its votes from there (FER+'s trainer reads those; they differ from
    ``fer2013new.csv`` for 1,602 images). Per-image protocols (majority) keep one row per image
    name, as FER+'s ``generate_training_data.py`` writes one PNG per name: rows without a name are
    excluded as ``no-image-name``, all but the last row of a repeated name as ``duplicate-name``.
    """
    last_row_of_name = {name: i for i, (_, name, _) in enumerate(new_rows) if name}
    out: list[tuple[Labelled, str] | None] = []
    for i, row in enumerate(rows):
        if row is None:
            out.append(None)
            continue
        emotion, usage = row
        votes, name, exclude = None, None, ""
        if new_rows:
            _, name, votes = new_rows[i]
            if protocol.per_image and name is not None:
                if not name:
                    exclude = "no-image-name"
                elif last_row_of_name.get(name) != i:
                    exclude = "duplicate-name"
            if label_votes is not None and name:
                found = label_votes.get(usage, {}).get(name)
                votes = found if found is not None or protocol.per_image else votes
        lab = protocol.rule(emotion, votes, usage, include_valid)
        if exclude:
            lab = Labelled(None, None, lab.native, exclude)
        out.append((lab, name or ""))
    return out
