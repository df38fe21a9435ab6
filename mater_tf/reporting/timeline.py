"""The prediction timeline figure: emotion probabilities over time per modality,
attention, and where the face was found."""

from __future__ import annotations

import io

import numpy as np


def timeline_png(result: dict) -> bytes:
    """Renders a `Predictor.predict` result as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = result["labels"]
    windows = result["windows"]
    step = result["window_seconds"]
    starts = np.array([w["start"] for w in windows])
    modalities = [m for m in ("audio", "face") if f"{m}_probabilities" in result]
    attention = result.get("attention", {})
    rows = len(modalities) + (len(modalities) if attention else 0) + 1
    figure, axes = pyplot.subplots(rows, 1, figsize=(9, 2.1 * rows), dpi=100, squeeze=False)
    axes = axes[:, 0]
    colours = pyplot.get_cmap("tab10")
    row = 0
    for modality in modalities:
        axis = axes[row]
        row += 1
        scores = np.full((len(windows), len(names)), np.nan)
        for index, window in enumerate(windows):
            if f"{modality}_probabilities" in window:
                scores[index] = window[f"{modality}_probabilities"]
        for label, name in enumerate(names):
            axis.plot(starts + step / 2, scores[:, label], marker="o", color=colours(label % 10), label=name)
        axis.set_ylim(0, 1)
        axis.set_xlim(0, len(windows) * step)
        axis.set_ylabel(f"{modality}\nP(window alone)")
        clip_probabilities = result[f"{modality}_probabilities"]
        best = max(clip_probabilities, key=clip_probabilities.get)
        axis.set_title(f"{modality}: clip says {best} ({clip_probabilities[best]:.2f})", fontsize=9)
    axes[0].legend(fontsize=7, ncol=min(len(names), 8), loc="upper center", bbox_to_anchor=(0.5, 1.45))
    if attention:
        for modality in modalities:
            layers = sorted(k for k in attention if k.startswith(f"{modality}_attention_"))
            axis = axes[row]
            row += 1
            last = np.asarray(attention[layers[-1]]).mean(axis=0)  # mean over heads, [T, T]
            axis.imshow(
                last, cmap="viridis", aspect="auto", extent=(0, len(windows) * step, len(windows) * step, 0)
            )
            axis.set_ylabel(f"{modality}\nquery window (s)")
            axis.set_title(
                f"{modality} attention, last layer, mean over heads (column = window attended to)", fontsize=9
            )
    axis = axes[row]
    found = [w["face_frames_found"] for w in windows]
    axis.bar(
        starts + step / 2, found, width=step * 0.8, color=["tab:green" if f else "tab:red" for f in found]
    )
    axis.set_xlim(0, len(windows) * step)
    axis.set_ylabel("face frames\nfound")
    axis.set_xlabel("seconds")
    figure.suptitle(
        f"{result['clip'].split('/')[-1]}: {result['emotion']} ({result['probabilities'][result['emotion']]:.2f})",
        fontsize=11,
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()
