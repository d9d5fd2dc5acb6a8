"""Calibration check: the synthetic FER task must not be solvable from a single pixel statistic.

Generates a synthetic set (or reads one), then trains on the written train split and scores on the
written test split:
  * colour histogram (16 bins × 3 channels) → multinomial logistic regression
  * colour histogram → gradient-boosted trees (a non-linear probe of the same statistic)
  * raw pixels downsampled to 32×32 RGB → multinomial logistic regression (a linear probe)
and, as the opposite check (the label *is* in the face geometry), the ground-truth 68 landmarks,
similarity-aligned to their mean shape → logistic regression. It prints each probe's test accuracy and mean class accuracy next to the majority-class rate.
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
from lldif_bench.synthetic.revisions import DEFAULT_REVISION
from lldif_bench.synthetic.writer import LABEL_FILE, LANDMARK_FILE, aligned_relpath, generate_synthetic


def load_split(root: Path) -> dict[str, tuple[list[np.ndarray], np.ndarray, np.ndarray]]:
    """Per split: images, canonical labels and 68-point landmarks (from landmarks.npz)."""
    with np.load(root / LANDMARK_FILE, allow_pickle=False) as lm:
        points = dict(zip(lm["relpath"].tolist(), lm["points"]))
    rows = (root / LABEL_FILE).read_text().split("\n")
    out: dict[str, tuple[list, list, list]] = {"train": ([], [], []), "test": ([], [], [])}
    for row in rows:
        name, label = row.split(" ")
        images, labels, marks = out[name.split("_")[0]]
        images.append(read_image(root / aligned_relpath(name)))
        labels.append(int(label) - 1)
        marks.append(points[aligned_relpath(name)])
    return {k: (v[0], np.array(v[1]), np.stack(v[2])) for k, v in out.items()}


def aligned_shape(points: np.ndarray) -> np.ndarray:
    """68 landmarks with translation, scale and in-plane rotation removed (eyes level, unit size)."""
    p = points - points.mean(0)
    eye_axis = points[42:48].mean(0) - points[36:42].mean(0)
    angle = -np.arctan2(eye_axis[1], eye_axis[0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    p = p @ rot.T
    return (p / np.sqrt((p ** 2).sum(1).mean())).ravel()


def colour_histogram(img: np.ndarray, bins: int = 16) -> np.ndarray:
    feats = [np.bincount(img[..., c].ravel() // (256 // bins), minlength=bins) for c in range(3)]
    return np.concatenate(feats).astype(np.float32) / img[..., 0].size


def raw_pixels(img: np.ndarray, side: int = 32) -> np.ndarray:
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32).ravel() / 255


def logistic_probe() -> GridSearchCV:
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, tol=1e-3))
    return GridSearchCV(pipe, {"logisticregression__C": [0.001, 0.01, 0.1, 1.0]}, cv=3, n_jobs=1)


def boosted_probe() -> GridSearchCV:
    return GridSearchCV(HistGradientBoostingClassifier(max_iter=100, random_state=0),
                        {"learning_rate": [0.1]}, cv=2, n_jobs=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-images", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--revision", type=int, default=DEFAULT_REVISION, help="synthetic generator revision")
    ap.add_argument("--data", type=Path, default=None, help="an existing RAF-DB-layout folder to probe instead")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "clear"
            t0 = time.perf_counter()
            generate_synthetic(root, args.num_images, args.size, args.seed, revision=args.revision)
            print(f"generated {args.num_images} images in {time.perf_counter() - t0:.1f} s")
        data = load_split(root)
    (train_imgs, y_train, train_lm), (test_imgs, y_test, test_lm) = data["train"], data["test"]
    majority = np.bincount(y_train).argmax()
    print(f"train {len(y_train)}  test {len(y_test)}  majority-class rate on test "
          f"{np.mean(y_test == majority):.3f} (mean class accuracy 0.143)")

    probes = [
        ("colour histogram 16x3 + logistic regression", colour_histogram, logistic_probe),
        ("raw pixels 32x32x3 + logistic regression", raw_pixels, logistic_probe),
        ("colour histogram 16x3 + gradient boosting", colour_histogram, boosted_probe),
    ]
    probes.append(("landmark geometry 68x2 + logistic regression", aligned_shape, logistic_probe))
    for title, featurise, make in probes:
        t0 = time.perf_counter()
        use_lm = featurise is aligned_shape
        x_train = np.stack([featurise(v) for v in (train_lm if use_lm else train_imgs)])
        x_test = np.stack([featurise(v) for v in (test_lm if use_lm else test_imgs)])
        model = make().fit(x_train, y_train)
        pred = model.predict(x_test)
        print(f"{title:<46} test accuracy {np.mean(pred == y_test):.3f}  "
              f"mean class accuracy {balanced_accuracy_score(y_test, pred):.3f}  "
              f"(params {model.best_params_}, {time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
