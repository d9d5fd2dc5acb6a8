"""The synthetic clear / low-light pair: ``OUT/clear`` (the generator) and ``OUT/lowlight`` (the same
images through the degradation pipeline, built by the same code as ``make-dataset rafdb``).

Both halves resume: a finished clear set with the same settings and generator revision is reused (its
label file is written last, so a half-written set is regenerated), and the low-light build keeps its
verified outputs. A regenerated clear set takes its old low-light copy with it.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from lldif_bench.datasets import open_dataset
from lldif_bench.datasets.build import BuildSummary, build_lowlight
from lldif_bench.synthetic.revisions import DEFAULT_REVISION
from lldif_bench.synthetic.writer import generate_synthetic

log = logging.getLogger(__name__)

CLEAR_DIR = "clear"
LOWLIGHT_DIR = "lowlight"
LABEL_FILE = "EmoLabel/list_patition_label.txt"
CARD = "synthetic.json"


def _finished_clear_set(root: Path, num_images: int, size: int, seed: int, revision: int) -> bool:
    card = root / CARD
    if not (card.is_file() and (root / LABEL_FILE).is_file()):
        return False
    meta = json.loads(card.read_text())
    return ((meta.get("num_images"), meta.get("size"), meta.get("seed"), meta.get("generator_revision"))
            == (num_images, size, seed, revision))


def make_synthetic_pair(out: Path, *, num_images: int = 700, size: int = 100, seed: int = 0,
                        revision: int = DEFAULT_REVISION, preset: str = "paper", device: str = "auto", workers: int = 2,
                        lowlight: bool = True, progress: bool = True) -> tuple[dict, BuildSummary | None]:
    """Write (or finish) ``out/clear`` and, with ``lowlight``, ``out/lowlight``.

    The low-light copy gets the generator's ground-truth landmarks (``landmarks.npz``), so methods
    that need landmarks train on it directly. Returns the generator summary (``{"reused": True}``
    added when the clear set was kept) and the low-light build summary.
    """
    out = Path(out)
    clear = out / CLEAR_DIR
    if _finished_clear_set(clear, num_images, size, seed, revision):
        summary = json.loads((clear / CARD).read_text()) | {"reused": True}
        log.info("kept the finished clear set in %s", clear)
    else:
        for stale in (clear, out / LOWLIGHT_DIR):  # unfinished, other settings or generator revision
            if stale.exists():
                log.info("removing %s: its clear set is regenerated", stale)
                shutil.rmtree(stale)
        summary = generate_synthetic(clear, num_images=num_images, size=size, seed=seed, revision=revision,
                                     progress=progress)
    if not lowlight:
        return summary, None
    built = build_lowlight(open_dataset(clear), out / LOWLIGHT_DIR, preset=preset, seed=seed, device=device,
                           workers=workers, landmarks="synthetic", progress=progress,
                           command_line=f"make_synthetic_pair(num_images={num_images}, size={size}, "
                                        f"seed={seed}, revision={revision}, preset={preset!r})")
    return summary, built
