"""Figures: confusion matrices (as in the paper's Fig. 2), attention maps, and a cross-validation's
accuracy per fold."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

OUTPUT_TITLES = {"av": "AV (fused)", "audio": "A (audio)", "face": "V (face)"}


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


def attention_png(maps: np.ndarray, titles: Sequence[str], suptitle: str) -> bytes:
    """Attention heatmaps side by side: maps [clips, T, T] (rows attend to columns)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, len(maps), figsize=(2.6 * len(maps), 2.8), dpi=100, squeeze=False)
    for axis, values, title in zip(axes[0], maps, titles):
        axis.imshow(values, cmap="viridis", vmin=0.0, vmax=max(float(values.max()), 1e-6))
        axis.set_title(title, fontsize=8)
        axis.set_xlabel("attended window", fontsize=7)
        axis.set_ylabel("window", fontsize=7)
        axis.tick_params(labelsize=6)
    figure.suptitle(suptitle, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()


def fold_accuracy_png(summary: dict) -> bytes:
    """Grouped bars: accuracy of every fold for AV, audio and face."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    outputs = list(summary["outputs"])
    folds = len(summary["outputs"][outputs[0]]["accuracy"]["per_fold"])
    width = 0.8 / len(outputs)
    figure, axes = pyplot.subplots(figsize=(max(5, folds * 0.7), 3.2), dpi=100)
    for offset, output in enumerate(outputs):
        # A fold with no figure for this output (modality absent, branch never trained): no bar.
        values = [np.nan if v is None else v for v in summary["outputs"][output]["accuracy"]["per_fold"]]
        axes.bar(np.arange(folds) + offset * width, values, width, label=OUTPUT_TITLES[output])
    axes.set_xticks(np.arange(folds) + width * (len(outputs) - 1) / 2, labels=[str(k) for k in range(folds)])
    axes.set_xlabel("test fold")
    axes.set_ylabel("accuracy")
    axes.set_ylim(0, 1)
    axes.legend(fontsize=8)
    prefix = "SYNTHETIC data: " if summary.get("synthetic") else ""
    axes.set_title(f"{prefix}{summary['experiment']}: accuracy per fold", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()
