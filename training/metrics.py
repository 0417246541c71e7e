"""Classification figures: accuracy, per-class precision and recall, confusion matrix."""

from __future__ import annotations

import numpy as np


def classification_report(y_true, y_pred, class_names) -> dict:
    """Figures for integer labels; confusion[i][j] counts true class i predicted as j."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    k = len(class_names)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(class_names):
        tp = confusion[i, i]
        predicted, actual = confusion[:, i].sum(), confusion[i, :].sum()
        if not predicted and not actual and i >= 2:
            continue  # an extra class (not_face) this data neither has nor got
        per_class[name] = {
            "precision": float(tp / predicted) if predicted else 0.0,
            "recall": float(tp / actual) if actual else 0.0,
            "support": int(actual),
        }
    total = confusion.sum()
    return {
        "accuracy": float(np.trace(confusion) / total) if total else 0.0,
        "count": int(total),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "class_names": list(class_names),
    }
