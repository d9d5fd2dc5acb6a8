"""The one record type every dataset adapter yields."""

from __future__ import annotations

from dataclasses import dataclass, field

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Record:
    """One labelled image of a dataset.

    ``relpath`` is the item's key: the path relative to the dataset root that the low-light copy
    keeps (for CSV-backed datasets such as FER2013, a virtual ``<csv name>#<row>`` key).
    ``label`` is the canonical index (see :mod:`lldif_bench.emotions`); ``native_label`` is the
    dataset's own label as written in its files, so the per-dataset order is recoverable.
    """

    relpath: str
    label: int
    split: str
    native_label: str = ""
    subject: str | None = None
    angle: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)
