"""Class distribution per split of a dataset folder, clear vs low-light (the paper's Fig. 4)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from lldif_bench.datasets.detect import CARD, open_dataset


@dataclass
class Distribution:
    name: str
    class_names: list[str]
    clear: dict[str, dict[str, int]]  # split -> class -> count (source images)
    lowlight: dict[str, dict[str, int]] | None  # the same for the low-light copy, if this is one


def class_distribution(path: str | Path) -> Distribution:
    """Counts per split and class. For a copy made by make-dataset, the clear counts come from its
    source (as recorded in dataset.json) and the low-light ones from the images it holds."""
    path = Path(path)
    card_path = path / CARD
    if card_path.is_file():
        card = json.loads(card_path.read_text())
        if card.get("lowlight") and "counts" in card:
            return Distribution(path.name, card["class_names"], card["source_counts"], card["counts"])
    ds = open_dataset(path)
    counts = {}
    for split in ("train", "test"):
        c = Counter(ds.class_names[r.label] for r in ds.records() if r.split == split)
        counts[split] = {name: c.get(name, 0) for name in ds.class_names}
    return Distribution(path.name, ds.class_names, counts, None)


def plot_distributions(dists: list[Distribution], out: str | Path) -> Path:
    """One row per dataset, one panel per split; bars per class, clear beside low-light."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    splits = ("train", "test")
    fig, axes = plt.subplots(len(dists), 2, figsize=(11, 3.2 * len(dists)), squeeze=False)
    for row, d in enumerate(dists):
        for col, split in enumerate(splits):
            ax = axes[row][col]
            x = np.arange(len(d.class_names))
            clear = [d.clear.get(split, {}).get(c, 0) for c in d.class_names]
            if d.lowlight is None:
                ax.bar(x, clear, 0.6, label="clear", color="#f2a93b")
            else:
                low = [d.lowlight.get(split, {}).get(c, 0) for c in d.class_names]
                ax.bar(x - 0.2, clear, 0.4, label="clear", color="#f2a93b")
                ax.bar(x + 0.2, low, 0.4, label="low-light", color="#3b5bf2")
            ax.set_xticks(x, d.class_names, rotation=30, ha="right")
            ax.set_title(f"{d.name} — {split} ({sum(clear)} images)")
            ax.set_ylabel("images")
            ax.legend()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
