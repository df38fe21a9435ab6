"""The prediction timeline figure: emotion probabilities over time per modality,
attention, and where the face was found.

A clip with no face (`result["face"] == "no face"`) gets "no face" written
across its face rows instead of face scores or attention.
"""

from __future__ import annotations

import io

import numpy as np

NO_FACE = "no face"


def _write_no_face(axis, width: float) -> None:
    axis.set_xlim(0, width)
    axis.set_yticks([])
    axis.text(
        0.5, 0.5, NO_FACE, transform=axis.transAxes, ha="center", va="center", fontsize=14, color="grey"
    )


def timeline_figure(result: dict):
    """Draws a `Predictor.predict` result as a matplotlib figure (rows: modalities, attention, faces)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = result["labels"]
    windows = result["windows"]
    step = result["window_seconds"]
    width = len(windows) * step
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
        axis.set_ylabel(f"{modality}\nP(window alone)")
        clip_probabilities = result[f"{modality}_probabilities"]
        if clip_probabilities is None:
            _write_no_face(axis, width)
            axis.set_title(f"{modality}: {NO_FACE} in this clip (the voice decides)", fontsize=9)
            continue
        scores = np.full((len(windows), len(names)), np.nan)
        for index, window in enumerate(windows):
            if f"{modality}_probabilities" in window:
                scores[index] = window[f"{modality}_probabilities"]
        for label, name in enumerate(names):
            axis.plot(starts + step / 2, scores[:, label], marker="o", color=colours(label % 10), label=name)
        axis.set_ylim(0, 1)
        axis.set_xlim(0, width)
        best = max(clip_probabilities, key=clip_probabilities.get)
        axis.set_title(f"{modality}: clip says {best} ({clip_probabilities[best]:.2f})", fontsize=9)
    if axes[0].get_lines():
        axes[0].legend(fontsize=7, ncol=min(len(names), 8), loc="upper center", bbox_to_anchor=(0.5, 1.45))
    if attention:
        for modality in modalities:
            layers = sorted(k for k in attention if k.startswith(f"{modality}_attention_"))
            axis = axes[row]
            row += 1
            axis.set_ylabel(f"{modality}\nquery window (s)")
            if not layers:
                _write_no_face(axis, width)
                axis.set_title(f"{modality} attention: {NO_FACE}", fontsize=9)
                continue
            last = np.asarray(attention[layers[-1]]).mean(axis=0)  # mean over heads, [T, T]
            axis.imshow(last, cmap="viridis", aspect="auto", extent=(0, width, width, 0))
            axis.set_title(
                f"{modality} attention, last layer, mean over heads (column = window attended to)", fontsize=9
            )
    axis = axes[row]
    found = [w["face_frames_found"] for w in windows]
    axis.bar(
        starts + step / 2, found, width=step * 0.8, color=["tab:green" if f else "tab:red" for f in found]
    )
    axis.set_xlim(0, width)
    axis.set_ylabel("face frames\nfound")
    axis.set_xlabel("seconds")
    figure.suptitle(
        f"{result['clip'].split('/')[-1]}: {result['emotion']} ({result['probabilities'][result['emotion']]:.2f})",
        fontsize=11,
    )
    figure.tight_layout()
    return figure


def timeline_png(result: dict) -> bytes:
    """Renders a `Predictor.predict` result as PNG bytes."""
    figure = timeline_figure(result)  # selects the Agg backend before pyplot is imported here
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()
