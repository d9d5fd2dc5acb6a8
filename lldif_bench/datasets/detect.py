"""``open_dataset(path)``: a source dataset, a low-light copy, or the synthetic generator's output.

A copy made by ``make-dataset`` carries ``dataset.json`` naming its adapter and options; anything
else is recognised by its layout (RAF-DB, FER2013/FERPlus, KDEF, ImageFolder, in that order).
The synthetic generator's root holds ``clear/`` (RAF-DB layout) next to ``landmarks.npz``.
"""

from __future__ import annotations

import json
from pathlib import Path

from lldif_bench.datasets.base import ADAPTERS, Dataset
from lldif_bench.errors import UserError

CARD = "dataset.json"


def open_dataset(path: str | Path, **options) -> Dataset:
    """Open ``path`` with the adapter its card or layout names; ``options`` override the card's."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"dataset folder {path} does not exist")
    card = path / CARD
    if card.is_file():
        try:
            meta = json.loads(card.read_text())
        except json.JSONDecodeError as err:
            raise UserError(f"{card} is not valid JSON ({err}); delete it or rebuild the dataset") from None
        if "adapter" in meta:
            return ADAPTERS.get(meta["adapter"])(path, **{**meta.get("options", {}), **options})
    if (path / "clear").is_dir() and not any(e.obj.detect(path) for e in ADAPTERS):
        return open_dataset(path / "clear", **options)
    for entry in ADAPTERS:
        if entry.obj.detect(path):
            return entry.obj(path, **options)
    hints = "; ".join(f"{e.name}: {e.obj.layout_hint}" for e in ADAPTERS)
    raise UserError(f"{path} is not a dataset layout this tool knows. Expected one of: {hints}")
