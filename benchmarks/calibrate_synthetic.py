"""Difficulty calibration of the synthetic FER dataset (issue: "Package, CLI, CI and the built-in
synthetic FER dataset").

Measures, in one run and on one generated clear / low-light pair:
- ResNet-18 from scratch, trained for a few CPU minutes through the real harness (`run_training`),
  on the clear images and on the low-light copy: test accuracy, mean class accuracy, the gap;
- the single-statistic probes of ``calibrate_synthetic_probe.py`` (colour histogram and raw-pixel
  logistic regression) on the same clear set, beside the majority-class rate.

    python benchmarks/calibrate_synthetic.py --num-images 2000 --epochs 12 --image-size 64 --cosine --seed 0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibrate_synthetic_probe import colour_histogram, load_split, logistic_probe, raw_pixels

from lldif_bench.synthetic.pair import make_synthetic_pair
from lldif_bench.training import resolve_config, run_training


def train(method: str, data: Path, out: Path, args) -> tuple[dict, float]:
    start = time.perf_counter()
    cfg = resolve_config({"method": method, "data": str(data), "out": str(out), "seed": args.seed,
                          "epochs": args.epochs, "image_size": args.image_size, "batch_size": args.batch_size,
                          "lr": args.lr, "optimizer": "adam", "scheduler": "cosine" if args.cosine else None,
                          "scheduler_params": {} if args.cosine else None, "progress": False,
                          "device": "cpu", "overwrite": True, "augment": {"erase_p": args.erase_p}})
    run_dir = run_training(cfg)
    return json.loads((run_dir / "results.json").read_text()), time.perf_counter() - start


def probes(root: Path) -> dict[str, float]:
    split = load_split(root)
    (tr_img, tr_y, _), (te_img, te_y, _) = split["train"], split["test"]
    out = {"majority class": float(np.mean(te_y == np.bincount(tr_y).argmax()))}
    for name, feat in (("colour histogram + logistic", colour_histogram), ("raw pixels 32x32 + logistic", raw_pixels)):
        clf = logistic_probe().fit(np.stack([feat(i) for i in tr_img]), tr_y)
        out[name] = float(clf.score(np.stack([feat(i) for i in te_img]), te_y))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("calibration"))
    ap.add_argument("--num-images", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--erase-p", type=float, default=0.0,
                    help="random-erasing probability (the suite default 0.5 slows a short run down)")
    ap.add_argument("--cosine", action="store_true", help="cosine schedule instead of the method's own")
    ap.add_argument("--method", default="resnet18")
    ap.add_argument("--skip-probes", action="store_true")
    args = ap.parse_args()

    make_synthetic_pair(args.out / "data", num_images=args.num_images, seed=args.seed, device="cpu",
                        progress=False)
    rows = []
    for condition, folder in (("clear", "clear"), ("low-light", "lowlight")):
        res, seconds = train(args.method, args.out / "data" / folder, args.out / f"runs-{condition}", args)
        final = res.get("final", res)
        rows.append((condition, final["accuracy"], final["mean_class_accuracy"], seconds))
    print(f"\n{args.method} from scratch, {args.num_images} synthetic images (seed {args.seed}), "
          f"{args.epochs} epochs at {args.image_size}px, Adam lr {args.lr}"
          f"{' (cosine)' if args.cosine else ''}, random erasing p={args.erase_p}, CPU:")
    print(f"{'condition':<10} {'accuracy':>9} {'mean class acc':>15} {'train+eval s':>13}")
    for condition, acc, mca, seconds in rows:
        print(f"{condition:<10} {100 * acc:>8.1f}% {100 * mca:>14.1f}% {seconds:>13.0f}")
    print(f"gap (clear - low-light): {100 * (rows[0][1] - rows[1][1]):.1f} points")
    if not args.skip_probes:
        print("\nsingle-statistic probes on the clear set (test accuracy):")
        for name, acc in probes(args.out / "data" / "clear").items():
            print(f"  {name:<30} {100 * acc:.1f}%")


if __name__ == "__main__":
    main()
