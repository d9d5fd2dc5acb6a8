"""Landmark backends against the synthetic ground truth, on clear and on low-light faces.

Measures, for every available real backend (face-alignment, dlib) and both face-box modes
(whole crop, face detector):
  - NME (mean point error / outer-eye-corner distance, 300-W convention) over the faces the backend
    found, and over all faces once misses get the dataset-mean-shape fallback;
  - the detector-miss rate; landmarks/s (single process, this machine);
and, as a floor, the NME of the canonical mean shape placed in the crop box (no image at all).

Data: ``generate_synthetic`` (RAF-DB layout, 100×100 by default) → the clear set; each image
darkened with ``degradations.degrade_batch_uint8`` (preset ``paper``, per-image parameters from the
seed and the relpath, then JPEG at the sampled quality, as make-dataset would write it).

    python benchmarks/bench_landmarks.py --num-images 280 --seed 0   # ~3 min on 2 shared cores
    python benchmarks/bench_landmarks.py --calibrate      # whole-crop inset / dlib upscale sweep
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lldif_bench.imageio import decode_image, encode_image, read_image
from lldif_bench.landmarks import BACKENDS, build_backend, nme, read_landmarks
from lldif_bench.landmarks.fallback import MISSED, canonical_shape_in_crop, fill_misses
from lldif_bench.landmarks.geometry import DEFAULT_INSET
from lldif_bench.landmarks.preprocess import PREPROCESS

REAL_BACKENDS = ("face-alignment", "dlib")


def synthetic_set(root: Path, num_images: int, size: int, seed: int) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    from lldif_bench.synthetic import generate_synthetic

    clear = root / "clear"
    if not (clear / "landmarks.npz").is_file():
        generate_synthetic(clear, num_images=num_images, size=size, seed=seed, progress=False)
    truth = read_landmarks(clear / "landmarks.npz")
    images = [read_image(clear / rel) for rel in truth.relpath]
    return truth.relpath, images, truth.points.astype(np.float64)


def darken(relpaths: list[str], images: list[np.ndarray], seed: int, preset_name: str) -> list[np.ndarray]:
    from degradations import degrade_batch_uint8, load_preset

    preset = load_preset(preset_name)
    out = []
    for start in range(0, len(images), 64):
        chunk = images[start:start + 64]
        keys = relpaths[start:start + 64]
        batch = torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2).contiguous()
        params = [preset.sample(seed, key) for key in keys]
        dark = degrade_batch_uint8(batch, params, preset=preset).permute(0, 2, 3, 1).numpy()
        for img, p in zip(dark, params):
            quality = p.get("jpeg_quality") or 95
            out.append(decode_image(encode_image(np.ascontiguousarray(img), "jpg", jpeg_quality=int(quality))))
    return out


def run_backend(backend, images: list[np.ndarray], whole_crop: bool, truth: np.ndarray) -> dict:
    started = time.perf_counter()
    pts, conf, status = backend.detect(images, whole_crop)
    seconds = time.perf_counter() - started
    found = np.array([s != MISSED for s in status])
    sizes = np.array([img.shape[:2] for img in images])
    errors = nme(pts[found], truth[found]) if found.any() else np.array([np.nan])
    filled, fstatus = pts.copy(), list(status)
    fill_misses(filled, conf.copy(), fstatus, sizes)
    all_errors = nme(filled, truth)
    return {
        "n": len(images), "found": int(found.sum()), "miss_rate": float(1 - found.mean()),
        "nme_found_mean": float(np.mean(errors)), "nme_found_median": float(np.median(errors)),
        "nme_all_with_fallback": float(np.mean(all_errors)),
        "landmarks_per_s": len(images) / seconds,
    }


def table(rows: list[dict]) -> str:
    cols = ["backend", "mode", "preprocess", "images", "n", "miss_rate", "nme_found_mean", "nme_found_median",
            "nme_all_with_fallback", "landmarks_per_s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(f"{v:.4f}" if isinstance(v, float) and c != "landmarks_per_s" else
                         f"{v:.1f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-images", type=int, default=280)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--work", type=Path, default=None, help="keep the generated data here (default: a temp dir)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--preprocess", default="none,stretch",
                    help="comma-separated contrast normalisations to compare (see lldif_bench.landmarks.preprocess)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    ap.add_argument("--calibrate", action="store_true",
                    help="sweep the whole-crop inset (and dlib's upscale) on the clear images instead")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    with tempfile.TemporaryDirectory() as tmp:
        root = args.work or Path(tmp)
        t0 = time.perf_counter()
        relpaths, clear, truth = synthetic_set(root, args.num_images, args.size, args.seed)
        dark = darken(relpaths, clear, args.seed, args.preset)
        lum = [float(np.mean(im)) for im in clear], [float(np.mean(im)) for im in dark]
        print(f"synthetic set: {len(clear)} faces {args.size}x{args.size}, seed {args.seed}; "
              f"mean pixel clear {np.mean(lum[0]):.1f} -> low-light ({args.preset}) {np.mean(lum[1]):.1f}; "
              f"prepared in {time.perf_counter() - t0:.1f}s")
        available = [b for b in REAL_BACKENDS if BACKENDS.get(b).availability(False)[0]
                     or BACKENDS.get(b).availability(True)[0]]
        for b in REAL_BACKENDS:
            if b not in available:
                print(f"skipped {b}: {BACKENDS.get(b).availability(True)[1]}")

        if args.calibrate:
            return calibrate(available, clear, truth, args.device)

        rows = []
        for name, images in (("clear", clear), ("low-light", dark)):
            floor = nme(np.stack([canonical_shape_in_crop(*im.shape[:2]) for im in images]), truth)
            rows.append({"backend": "canonical mean shape (no image)", "mode": "-", "images": name,
                         "n": len(images), "miss_rate": 0.0, "nme_found_mean": float(floor.mean()),
                         "nme_found_median": float(np.median(floor)), "nme_all_with_fallback": float(floor.mean())})
        for backend_name in available:
            for whole_crop in (True, False):
                if not BACKENDS.get(backend_name).availability(whole_crop)[0]:
                    continue
                backend = build_backend(backend_name, device=args.device, whole_crop=whole_crop).backend
                for prep in args.preprocess.split(","):
                    backend.preprocess, backend.prepare = prep, PREPROCESS.get(prep)
                    for name, images in (("clear", clear), ("low-light", dark)):
                        r = run_backend(backend, images, whole_crop, truth)
                        rows.append({"backend": backend_name, "mode": "whole-crop" if whole_crop else "detector",
                                     "preprocess": prep, "images": name, **r})
        print(table(rows))
        if args.json:
            args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                            indent=2))
    return 0


def calibrate(available: list[str], clear: list[np.ndarray], truth: np.ndarray, device: str) -> int:
    rows = []
    for backend_name in available:
        if not BACKENDS.get(backend_name).availability(True)[0]:
            continue
        backend = build_backend(backend_name, device=device, whole_crop=True).backend
        variants = [{"upscale": u, "refine": k} for u in (1, 2) for k in (0, 1, 2)] if backend_name == "dlib" \
            else [{}]
        backend.preprocess, backend.prepare = "none", PREPROCESS.get("none")
        for variant in variants:
            for key, value in variant.items():
                setattr(backend, key, value)
            for inset in (0.0, 0.05, 0.1, 0.15, 0.2, 0.25):
                backend.inset = inset
                r = run_backend(backend, clear, True, truth)
                rows.append({"backend": backend_name, **variant, "inset": inset,
                             "nme_mean": round(r["nme_found_mean"], 4), "nme_median": round(r["nme_found_median"], 4),
                             "landmarks_per_s": round(r["landmarks_per_s"], 1)})
    for r in rows:
        print(r)
    print(f"(current default inset: {DEFAULT_INSET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
