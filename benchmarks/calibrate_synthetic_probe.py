"""Calibration check: the synthetic FER task must not be solvable from a single pixel statistic.

Generates a synthetic set (or reads one), then trains on the written train split and scores on the
written test split:
  * colour histogram (16 bins × 3 channels) → multinomial logistic regression
  * colour histogram → gradient-boosted trees (a non-linear probe of the same statistic)
  * raw pixels downsampled to 32×32 RGB → multinomial logistic regression (a linear probe)
and prints each probe's test accuracy and mean class accuracy next to the majority-class rate.
Regularisation strength is chosen by 3-fold cross-validation on the train split only.

    python benchmarks/calibrate_synthetic_probe.py --num-images 2000 --seed 0
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lldif_bench.imageio import read_image
from lldif_bench.synthetic.writer import LABEL_FILE, aligned_relpath, generate_synthetic


def load_split(root: Path) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    rows = (root / LABEL_FILE).read_text().split("\n")
    out: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    for row in rows:
        name, label = row.split(" ")
        images, labels = out[name.split("_")[0]]
        images.append(read_image(root / aligned_relpath(name)))
        labels.append(int(label) - 1)
    return {k: (v[0], np.array(v[1])) for k, v in out.items()}


def colour_histogram(img: np.ndarray, bins: int = 16) -> np.ndarray:
    feats = [np.bincount(img[..., c].ravel() // (256 // bins), minlength=bins) for c in range(3)]
    return np.concatenate(feats).astype(np.float32) / img[..., 0].size


def raw_pixels(img: np.ndarray, side: int = 32) -> np.ndarray:
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32).ravel() / 255


def logistic_probe() -> GridSearchCV:
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, tol=1e-3))
    return GridSearchCV(pipe, {"logisticregression__C": [0.001, 0.01, 0.1]}, cv=3, n_jobs=1)


def boosted_probe() -> GridSearchCV:
    return GridSearchCV(HistGradientBoostingClassifier(max_iter=100, random_state=0),
                        {"learning_rate": [0.1]}, cv=2, n_jobs=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-images", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--data", type=Path, default=None, help="an existing RAF-DB-layout folder to probe instead")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "clear"
            t0 = time.perf_counter()
            generate_synthetic(root, args.num_images, args.size, args.seed)
            print(f"generated {args.num_images} images in {time.perf_counter() - t0:.1f} s")
        data = load_split(root)
    (train_imgs, y_train), (test_imgs, y_test) = data["train"], data["test"]
    majority = np.bincount(y_train).argmax()
    print(f"train {len(y_train)}  test {len(y_test)}  majority-class rate on test "
          f"{np.mean(y_test == majority):.3f} (mean class accuracy 0.143)")

    probes = [
        ("colour histogram 16x3 + logistic regression", colour_histogram, logistic_probe),
        ("raw pixels 32x32x3 + logistic regression", raw_pixels, logistic_probe),
        ("colour histogram 16x3 + gradient boosting", colour_histogram, boosted_probe),
    ]
    for title, featurise, make in probes:
        t0 = time.perf_counter()
        x_train = np.stack([featurise(im) for im in train_imgs])
        x_test = np.stack([featurise(im) for im in test_imgs])
        model = make().fit(x_train, y_train)
        pred = model.predict(x_test)
        print(f"{title:<46} test accuracy {np.mean(pred == y_test):.3f}  "
              f"mean class accuracy {balanced_accuracy_score(y_test, pred):.3f}  "
              f"(params {model.best_params_}, {time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
