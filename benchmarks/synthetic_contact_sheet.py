"""Contact sheet of the synthetic generator: one person in all 7 expressions, clear vs low-light.

Rows (one per person): the clear render, the low-light copy (a preset, as ``make-dataset`` writes
it: the uint8 pipeline at the rendered size, then the preset's JPEG), and that copy brightened back
to the clear image's mean (so what survived can be seen). Columns: the classes. Each tile is
upscaled ``--zoom`` times with nearest-neighbour so single-pixel creases stay visible.

    python benchmarks/synthetic_contact_sheet.py --revision 4 --out sheet.png --people 0 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from degradations.files import jpeg_round_trip
from degradations.pipeline import degrade_batch_uint8
from degradations.presets import load_preset
from lldif_bench.emotions import CANONICAL
from lldif_bench.imageio import write_image
from lldif_bench.synthetic import render_face, sample_face_spec


def lowlight(img: np.ndarray, preset, seed: int, key: str) -> np.ndarray:
    params = preset.sample(seed, key)
    out = degrade_batch_uint8(torch.from_numpy(img).permute(2, 0, 1)[None].contiguous(), [params],
                              preset=preset)[0].permute(1, 2, 0).numpy()
    quality = params.get("jpeg_quality")
    return jpeg_round_trip(out, int(quality)) if quality else out


def brightened(dark: np.ndarray, reference: np.ndarray) -> np.ndarray:
    gain = reference.astype(np.float32).mean() / max(float(dark.mean()), 1.0)
    return np.clip(dark.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def sheet(people: list[int], revision: int, size: int, preset_name: str, seed: int, zoom: int) -> np.ndarray:
    preset = load_preset(preset_name)
    rows = []
    for person in people:
        clear, dark, bright = [], [], []
        for label in range(len(CANONICAL)):
            img = render_face(sample_face_spec(label, seed, person, revision), size).image
            low = lowlight(img, preset, seed, f"person{person}/{CANONICAL[label]}")
            clear.append(img)
            dark.append(low)
            bright.append(brightened(low, img))
        rows += [np.concatenate(r, 1) for r in (clear, dark, bright)]
    grid = np.concatenate(rows, 0)
    return cv2.resize(grid, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--revision", type=int, default=4)
    ap.add_argument("--people", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--preset", default="realistic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--zoom", type=int, default=2)
    args = ap.parse_args()
    write_image(args.out, sheet(args.people, args.revision, args.size, args.preset, args.seed, args.zoom))
    print(f"wrote {args.out}: columns {', '.join(CANONICAL)}; per person rows clear, {args.preset}, brightened")


if __name__ == "__main__":
    main()
