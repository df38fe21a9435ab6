"""Classification metrics of a set of predictions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts [true, predicted]."""
    flat = np.asarray(labels, np.int64) * num_classes + np.asarray(predictions, np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, label_names: Sequence[str]) -> dict:
    """Weighted accuracy (overall), unweighted accuracy (mean per-class recall
    over the classes present), per-class accuracy and the confusion matrix."""
    num_classes = len(label_names)
    matrix = confusion_matrix(labels, predictions, num_classes)
    support = matrix.sum(axis=1)
    present = support > 0
    per_class = np.where(present, np.diag(matrix) / np.maximum(support, 1), np.nan)
    total = int(support.sum())
    return {
        # None (JSON null) when no clip was scored, e.g. a modality absent from every test clip.
        "accuracy": float(np.trace(matrix) / total) if total else None,
        "unweighted_accuracy": float(np.nanmean(per_class)) if present.any() else None,
        "per_class_accuracy": {
            name: (None if np.isnan(value) else float(value)) for name, value in zip(label_names, per_class)
        },
        "support": {name: int(count) for name, count in zip(label_names, support)},
        "confusion_matrix": matrix.tolist(),
        "num_clips": total,
    }
