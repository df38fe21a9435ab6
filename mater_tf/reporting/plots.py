"""Figures: confusion matrices (as in the paper's Fig. 2)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np


def confusion_matrix_png(
    matrix: np.ndarray, label_names: Sequence[str], title: str, true_on_x: bool = False
) -> bytes:
    """Renders a confusion matrix (rows true, columns predicted) as PNG bytes.

    Cells show the rate per true class (recall), so classes of different sizes
    compare; the counts are in the metrics JSON. `true_on_x` draws the true
    (intended) emotion on the x axis, as the paper's Fig. 2 does.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    counts = np.asarray(matrix, dtype=np.float64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    size = max(4.0, 0.6 * len(label_names) + 2.0)
    figure, axes = pyplot.subplots(figsize=(size, size * 0.9), dpi=100)
    shown = rates.T if true_on_x else rates
    image = axes.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(label_names)), labels=label_names, rotation=45, ha="right")
    axes.set_yticks(range(len(label_names)), labels=label_names)
    axes.set_xlabel("intended (true)" if true_on_x else "predicted")
    axes.set_ylabel("predicted" if true_on_x else "true")
    axes.set_title(title, fontsize=9)
    for row in range(shown.shape[0]):
        for column in range(shown.shape[1]):
            colour = "white" if shown[row, column] > 0.5 else "black"
            axes.text(
                column, row, f"{shown[row, column]:.2f}", ha="center", va="center", color=colour, fontsize=7
            )
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()
