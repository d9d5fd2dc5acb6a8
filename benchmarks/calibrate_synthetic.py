"""Difficulty calibration of the synthetic FER dataset (issue: "Package, CLI, CI and the built-in
synthetic FER dataset").

Runs what ``lldif-bench demo`` runs (:func:`lldif_bench.demo.run_demo`: generate, darken with the
demo's preset (``DEMO_PRESET``, ``realistic``), train ResNet-18 from scratch with ``DEMO_RECIPE`` on
the clear and on the low-light copy), then adds, on the same data:
- the seconds each training run took (train + per-epoch evaluation);
- the single-statistic probes of ``calibrate_synthetic_probe.py`` (colour histogram and raw-pixel
  logistic regression) beside the majority-class rate;
- test accuracy on clear and low-light images per quartile of the low-light copy's sampled sensor
  noise, exposure and JPEG quality (from its manifest.csv): where the low-light gap comes from.

Every recipe option defaults to ``DEMO_RECIPE``; ``--epochs`` trains longer, ``--revision`` picks the
generator revision:

    python benchmarks/calibrate_synthetic.py --out calibration/n4000-s0 --num-images 4000 --seed 0
    python benchmarks/calibrate_synthetic.py --out calibration/n4000-s1 --num-images 4000 --seed 1

``--converge`` (``calibrate_synthetic_converge.py``) trains each of ``--seeds`` until the clear run's
train accuracy plateaus (at least 24 epochs) and reports clear, low-light (demo preset) and the
`paper` preset's copy, the gaps as mean and range over seeds, and the probes:

    python benchmarks/calibrate_synthetic.py --converge --revision 4 --out calibration/converge-r4
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibrate_synthetic_converge import MAX_EPOCHS, converge_seed, format_probes, summary_table
from calibrate_synthetic_probe import aligned_shape, colour_histogram, load_split, logistic_probe, raw_pixels

from lldif_bench.demo import DEMO_NUM_IMAGES, DEMO_RECIPE, run_demo
from lldif_bench.synthetic.pair import CLEAR_DIR, LOWLIGHT_DIR
from lldif_bench.synthetic.revisions import DEFAULT_REVISION, REVISIONS

# Single-statistic probes: name -> (feature of one image or of its landmarks, uses landmarks). The
# pixel ones must stay near the majority class (the label is not in pixel statistics); the landmark
# one is the opposite check (the label is in the face geometry).
PROBES = {"colour histogram + logistic": (colour_histogram, False),
          "raw pixels 32x32 + logistic": (raw_pixels, False),
          "landmark geometry + logistic": (aligned_shape, True)}


def probes(root: Path) -> dict[str, float]:
    """Majority-class rate and the single-statistic linear probes (test accuracy) on ``root``."""
    split = load_split(root)
    (tr_img, tr_y, tr_lm), (te_img, te_y, te_lm) = split["train"], split["test"]
    out = {"majority class": float(np.mean(te_y == np.bincount(tr_y).argmax()))}
    for name, (feat, on_landmarks) in PROBES.items():
        train_in, test_in = (tr_lm, te_lm) if on_landmarks else (tr_img, te_img)
        clf = logistic_probe().fit(np.stack([feat(i) for i in train_in]), tr_y)
        out[name] = float(clf.score(np.stack([feat(i) for i in test_in]), te_y))
    return out


def accuracy_by_degradation(run_dirs: dict[str, Path], manifest: pd.DataFrame, param: str,
                            bands: int = 4) -> pd.DataFrame:
    """Test accuracy (%) of each run (``{condition: run dir}``) per quantile band of one sampled
    degradation parameter of the low-light copy (``param.<param>`` of its ``manifest.csv``, read).

    Both conditions are broken down by the same images, so the clear column is the reference for
    what the degradation of that band costs. The runs' ``predictions.csv`` give the predictions.
    """
    rows = manifest[(manifest["split"] == "test") & (manifest["status"] == "ok")]
    values = rows.set_index("output")[f"param.{param}"]
    edges = values.quantile(np.linspace(0, 1, bands + 1)).drop_duplicates().to_list()
    labels = [f"{lo:.3g} to {hi:.3g}" for lo, hi in itertools.pairwise(edges)]
    band = pd.cut(values, edges, labels=labels, include_lowest=True)
    table = pd.DataFrame({"images": band.value_counts(sort=False)})
    for condition, run_dir in run_dirs.items():
        pred = pd.read_csv(run_dir / "predictions.csv").set_index("path")
        correct = (pred["label"] == pred["prediction"]).reindex(band.index)
        table[condition] = (100 * correct.groupby(band, observed=False).mean()).round(1)
    return table


# Where the low-light gap comes from: the sampled parameters of the low-light copy worth a breakdown
# (those the preset draws per image; the others are skipped).
BREAKDOWNS = {"noise_shot": "sensor shot-noise variance", "exposure_ev": "exposure (EV)",
              "jpeg_quality": "JPEG quality"}


def recipe_from_args(args: argparse.Namespace) -> dict:
    """``DEMO_RECIPE`` with the command-line overrides applied."""
    recipe = {**DEMO_RECIPE, "epochs": args.epochs, "image_size": args.image_size, "batch_size": args.batch_size,
              "lr": args.lr, "optimizer": args.optimizer, "scheduler": args.scheduler}
    if args.scheduler != DEMO_RECIPE["scheduler"]:
        recipe["scheduler_params"] = {}
    if args.optimizer != DEMO_RECIPE["optimizer"]:
        recipe["optimizer_params"] = {}
    return recipe


def describe(recipe: dict) -> str:
    return (f"{recipe['epochs']} epochs at {recipe['image_size']}px, batch {recipe['batch_size']}, "
            f"{recipe['optimizer']} lr {recipe['lr']} {recipe.get('optimizer_params') or ''}, "
            f"{recipe['scheduler']} {recipe.get('scheduler_params') or ''}, "
            f"weight decay {recipe.get('weight_decay', 'suite default')}, augment {recipe.get('augment', {})}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("calibration"),
                    help="output folder (data, runs, leaderboard); finished runs of the same recipe are kept")
    ap.add_argument("--num-images", type=int, default=DEMO_NUM_IMAGES)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=DEMO_RECIPE["epochs"])
    ap.add_argument("--image-size", type=int, default=DEMO_RECIPE["image_size"])
    ap.add_argument("--batch-size", type=int, default=DEMO_RECIPE["batch_size"])
    ap.add_argument("--lr", type=float, default=DEMO_RECIPE["lr"])
    ap.add_argument("--optimizer", default=DEMO_RECIPE["optimizer"])
    ap.add_argument("--scheduler", default=DEMO_RECIPE["scheduler"],
                    help="a different scheduler than the demo's runs with its own default parameters")
    ap.add_argument("--method", default="resnet18")
    ap.add_argument("--skip-probes", action="store_true")
    ap.add_argument("--revision", type=int, choices=[int(n) for n in REVISIONS.names()], default=DEFAULT_REVISION,
                    help="synthetic generator revision")
    ap.add_argument("--converge", action="store_true",
                    help="train to a plateau of the clear run's train accuracy (>= 24 epochs), --seeds, both presets")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of --converge")
    ap.add_argument("--max-epochs", type=int, default=MAX_EPOCHS, help="longest clear run of --converge")
    args = ap.parse_args()

    recipe = recipe_from_args(args)
    if args.converge:
        converge(args, recipe)
        return
    result = run_demo(args.out, methods=(args.method,), num_images=args.num_images, seed=args.seed,
                      device=args.device, recipe=recipe, revision=args.revision, progress=False)
    row = result.table.iloc[0]
    print(f"\n{args.method} from scratch, {args.num_images} synthetic images (seed {args.seed}, generator "
          f"revision {args.revision}), {describe(recipe)}:")
    print(f"{'condition':<10} {'accuracy':>9} {'mean class acc':>15} {'train+eval s':>13}")
    for condition in ("clear", "low-light"):
        seconds = result.seconds.get(f"{args.method}-synthetic-{condition}-s{args.seed}")
        shown = f"{seconds:>13.0f}" if seconds is not None else f"{'(kept)':>13}"
        print(f"{condition:<10} {row[f'{condition} acc (%)']:>8.1f}% {row[f'{condition} mean class acc (%)']:>14.1f}% "
              f"{shown}")
    print(f"gap (clear - low-light): {row['drop (points)']:.1f} points")
    runs = {c: args.out / "runs" / f"{args.method}-synthetic-{c}-s{args.seed}" for c in ("clear", "low-light")}
    manifest = pd.read_csv(args.out / "data" / LOWLIGHT_DIR / "manifest.csv")
    for param, title in BREAKDOWNS.items():
        column = manifest.get(f"param.{param}")
        if column is None or column.nunique() < 2:  # not drawn per image by this preset
            continue
        print(f"\ntest accuracy (%) by the low-light copy's {title} (quartiles of the test images):")
        print(accuracy_by_degradation(runs, manifest, param).rename_axis(param).to_string())
    if not args.skip_probes:
        print("\nsingle-statistic probes on the clear set (test accuracy):")
        print(format_probes(probes(args.out / "data" / CLEAR_DIR)))


def converge(args: argparse.Namespace, recipe: dict) -> None:
    results = [converge_seed(args.out, method=args.method, num_images=args.num_images, seed=seed,
                             revision=args.revision, device=args.device, recipe=recipe, max_epochs=args.max_epochs)
               for seed in args.seeds]
    print(f"\n{args.method} from scratch to a train-accuracy plateau, {args.num_images} synthetic images, generator "
          f"revision {args.revision}, seeds {', '.join(map(str, args.seeds))}; recipe otherwise {describe(recipe)}:")
    print(summary_table(results).to_markdown(index=False))
    if not args.skip_probes:
        for r in results:
            print(f"\nsingle-statistic probes on the clear set of seed {r.seed} (test accuracy):")
            print(format_probes(probes(args.out / f"seed{r.seed}" / "data" / CLEAR_DIR)))


if __name__ == "__main__":
    main()
