"""Classification metrics of one evaluation: accuracy, mean class accuracy, per class, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` counts, rows = true class, columns = predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    flat = labels * num_classes + predictions
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray,
                           class_names: Sequence[str]) -> dict:
    """Metrics of ``probabilities`` ``(N, K)`` against integer ``labels`` ``(N,)``.

    ``mean_class_accuracy`` averages per-class recall over the classes present in ``labels``
    (a class absent from the split has accuracy ``None`` and is left out of the mean).
    ``mean_confidence`` is the mean probability of the predicted class (LLDif Fig. 6).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    k = len(class_names)
    if probabilities.ndim != 2 or probabilities.shape[1] != k or len(labels) != len(probabilities):
        raise ValueError(f"probabilities {probabilities.shape} do not match {len(labels)} labels and {k} classes")
    n = len(labels)
    predictions = probabilities.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(labels, predictions, k)
    support = cm.sum(axis=1)
    per_class = {name: (float(cm[i, i] / support[i]) if support[i] else None) for i, name in enumerate(class_names)}
    present = [v for v in per_class.values() if v is not None]
    return {
        "n": int(n),
        "accuracy": float((predictions == labels).mean()) if n else float("nan"),
        "mean_class_accuracy": float(np.mean(present)) if present else float("nan"),
        "per_class": per_class,
        "support": {name: int(support[i]) for i, name in enumerate(class_names)},
        "confusion_matrix": cm.tolist(),
        "mean_confidence": float(probabilities.max(axis=1).mean()) if n else float("nan"),
    }
