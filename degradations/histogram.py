"""Figure 1 of the paper: per-channel and luminance histograms, clear vs low-light.

Histograms count uint8 sRGB code values over every image of a set (a file or a folder, searched
recursively). Luminance is Rec. 709 luma of the encoded values (``0.2126 R' + 0.7152 G' +
0.0722 B'``, rounded); a grey image counts towards luminance only. Undecodable files are skipped
and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lldif_bench.errors import UserError
from lldif_bench.imageio import ImageDecodeError, is_image_name, read_image

log = logging.getLogger("degradations")
CHANNELS = ("R", "G", "B", "luma")
COLOURS = {"R": "tab:red", "G": "tab:green", "B": "tab:blue", "luma": "black"}


@dataclass
class HistogramSet:
    name: str
    counts: dict[str, np.ndarray] = field(default_factory=lambda: {c: np.zeros(256, np.int64)
                                                                   for c in CHANNELS})
    images: int = 0
    skipped: dict[str, str] = field(default_factory=dict)

    def mean(self, ch: str) -> float:
        c = self.counts[ch]
        return float((c * np.arange(256)).sum() / c.sum()) if c.sum() else float("nan")

    def median(self, ch: str) -> float:
        c = self.counts[ch]
        if not c.sum():
            return float("nan")
        return float(np.searchsorted(np.cumsum(c), (c.sum() + 1) / 2.0))

    def summary_lines(self) -> list[str]:
        lines = [f"{self.name}: {self.images} image(s)"
                 + (f", {len(self.skipped)} skipped" if self.skipped else "")]
        for ch in CHANNELS:
            if self.counts[ch].sum():
                lines.append(f"  {ch:<5} mean {self.mean(ch):6.1f}  median {self.median(ch):5.0f}  (0-255)")
        return lines


def image_files(path: Path) -> list[Path]:
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and is_image_name(p.name))
        if not files:
            raise UserError(f"no image files under {path}")
        return files
    return [path]


def luma_u8(img: np.ndarray) -> np.ndarray:
    rgb = img.astype(np.float32)
    y = rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722
    return np.clip(np.floor(y + 0.5), 0, 255).astype(np.uint8)


def histograms(path: Path, name: str | None = None) -> HistogramSet:
    hs = HistogramSet(name or str(path))
    for f in image_files(path):
        try:
            img = read_image(f)
        except (ImageDecodeError, OSError) as err:
            hs.skipped[str(f)] = str(err)
            log.warning("skipped %s: %s", f, err)
            continue
        hs.images += 1
        if img.shape[2] == 1:
            hs.counts["luma"] += np.bincount(img.reshape(-1), minlength=256)
            continue
        for i, ch in enumerate(("R", "G", "B")):
            hs.counts[ch] += np.bincount(img[..., i].reshape(-1), minlength=256)
        hs.counts["luma"] += np.bincount(luma_u8(img).reshape(-1), minlength=256)
    if hs.images == 0:
        raise UserError(f"{path}: none of the images could be decoded")
    return hs


def plot_histograms(sets: list[HistogramSet], out: Path) -> None:
    """One row per set: per-channel histograms (left) and luminance (right), as frequencies."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.0 * len(sets)), constrained_layout=True)
    axes = fig.subplots(len(sets), 2, squeeze=False)
    x = np.arange(256)
    for row, hs in zip(axes, sets):
        for ch in ("R", "G", "B"):
            c = hs.counts[ch]
            if c.sum():
                row[0].fill_between(x, c / c.sum(), color=COLOURS[ch], alpha=0.35, step="mid", label=ch)
        c = hs.counts["luma"]
        row[1].fill_between(x, c / max(c.sum(), 1), color="0.3", alpha=0.6, step="mid")
        row[1].axvline(hs.mean("luma"), color="k", ls="--", lw=1, label=f"mean {hs.mean('luma'):.1f}")
        row[1].axvline(hs.median("luma"), color="k", ls=":", lw=1, label=f"median {hs.median('luma'):.0f}")
        row[0].set_title(f"{hs.name}: R, G, B")
        row[1].set_title(f"{hs.name}: luminance")
        for ax in row:
            ax.set_xlim(0, 255)
            ax.set_xlabel("pixel value")
            ax.set_ylabel("frequency")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
        if not any(hs.counts[ch].sum() for ch in ("R", "G", "B")):
            row[0].text(0.5, 0.5, "grey images: luminance only", ha="center", transform=row[0].transAxes)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
