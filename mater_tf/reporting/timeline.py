"""The prediction timeline figure of a whole clip, readable from a few seconds to an hour.

Rows, on one time axis in mm:ss (h:mm:ss past an hour):

* fused, audio, face: a colour bar, one cell per window, coloured by that
  window's emotion and paler the less sure it is (probability of the
  emotion from 1/labels, pale, to 1, full colour); face cells with no face
  probabilities are light grey; a clip with no face gets "no face" across
  its face bar;
* a voice model with a face channel (a built-in): "voice" (the model's
  output) and "face (not fused)", the face expression's bar in the same
  colours (its classes placed on the voice's labels), shown beside the
  voice and never combined with it;
* the fused probabilities of every label over time, stacked;
* the attention each window receives (per modality), when the model has attention;
* face found: the share of each window's frames in which the face was found
  (red ticks where none was).
"""

from __future__ import annotations

import io

import numpy as np

NO_FACE = "no face"
MISSING = (0.85, 0.85, 0.85)


def clock(seconds: float, _position=None) -> str:
    """mm:ss, or h:mm:ss from one hour."""
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def label_colours(count: int) -> np.ndarray:
    """One RGB colour per label (tab10, then tab20 beyond 10 labels)."""
    from matplotlib import pyplot

    cmap = pyplot.get_cmap("tab10" if count <= 10 else "tab20")
    return np.array([cmap(index % cmap.N)[:3] for index in range(count)])


def bar_colours(rows, colours: np.ndarray) -> np.ndarray:
    """[1, n, 3] RGB cells: the emotion's colour blended towards white as its probability falls to chance."""
    count = len(colours)
    cells = np.empty((1, len(rows), 3))
    for index, probabilities in enumerate(rows):
        if probabilities is None:
            cells[0, index] = MISSING
            continue
        probabilities = np.asarray(probabilities)
        best = int(np.argmax(probabilities))
        strength = np.clip((probabilities[best] - 1 / count) / (1 - 1 / count), 0, 1) if count > 1 else 1.0
        alpha = 0.25 + 0.75 * strength
        cells[0, index] = alpha * colours[best] + (1 - alpha) * np.ones(3)
    return cells


def timeline_figure(result: dict):
    """Draws a `Predictor.predict` result as a matplotlib figure (see the module doc)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    labels, windows = result["labels"], result["windows"]
    colours = label_colours(len(labels))
    starts = np.array([w["start"] for w in windows], np.float64)
    ends = np.array([w["end"] for w in windows], np.float64)
    total = float(ends.max()) if len(ends) else 1.0
    face_channel = result.get("face_expression") and "face_probabilities" not in result
    if face_channel:  # a voice model: its output is the voice's; the face is beside it, not fused
        bars = [("voice", "probabilities"), ("face\n(not fused)", "face_expression")]
    else:
        bars = [("fused", "probabilities")]
        bars += [(m, f"{m}_probabilities") for m in ("audio", "face") if f"{m}_probabilities" in result]
    has_attention = any(w.get("attention") for w in windows)
    heights = [0.5] * len(bars) + [1.6] + ([1.0] if has_attention else []) + [0.7]
    figure, axes = pyplot.subplots(
        len(heights),
        1,
        figsize=(14, 1.1 + 0.85 * sum(heights)),
        dpi=100,
        sharex=True,
        gridspec_kw={"height_ratios": heights},
    )
    edges = np.append(starts, ends[-1] if len(ends) else 0.0)
    for axis, (name, field) in zip(axes, bars):
        rows = [w.get(field) for w in windows]
        if field == "face_expression":
            from mater_tf.features.expression import on_voice_labels

            rows = [None if row is None else on_voice_labels(row, labels) for row in rows]
        axis.pcolormesh(edges, [0, 1], bar_colours(rows, colours), shading="flat")
        axis.set_yticks([])
        axis.set_ylabel(name, rotation=0, ha="right", va="center")
        if name.startswith("face") and result.get("face") == NO_FACE:
            axis.text(0.5, 0.5, NO_FACE, transform=axis.transAxes, ha="center", va="center", color="grey")
    axis = axes[len(bars)]
    fused = np.array([w["probabilities"] for w in windows], np.float64)
    centres = (starts + ends) / 2
    # Each window's value held over its whole span: x at the window edges, the last row repeated.
    axis.stackplot(edges, np.vstack([fused, fused[-1:]]).T, colors=colours, step="post", linewidth=0)
    axis.set_ylim(0, 1)
    axis.set_ylabel("voice\nP(emotion)" if face_channel else "fused\nP(emotion)")
    row = len(bars) + 1
    if has_attention:
        axis = axes[row]
        row += 1
        for modality, style in (("audio", "-"), ("face", "--")):
            values = [w.get("attention", {}).get(modality, np.nan) for w in windows]
            if not np.all(np.isnan(values)):
                axis.plot(centres, values, style, color="black", linewidth=0.8, label=modality)
        axis.set_ylabel("attention\nreceived")
        axis.legend(fontsize=7, loc="upper right")
    axis = axes[row]
    frames = np.array([w.get("frames", 0) for w in windows], np.float64)
    found = np.array([w.get("face_frames_found", 0) for w in windows], np.float64)
    share = np.divide(found, frames, out=np.zeros_like(found), where=frames > 0)
    axis.fill_between(edges, np.append(share, share[-1:]), step="post", color="tab:green", alpha=0.8)
    missing = (share == 0) & (frames > 0)
    if missing.any():
        axis.vlines(centres[missing], 0, 1, color="tab:red", linewidth=0.6)
    if not frames.any():
        axis.text(
            0.5, 0.5, "no video frames", transform=axis.transAxes, ha="center", va="center", color="grey"
        )
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("face\nfound")
    axis.set_xlim(0, total)
    axis.xaxis.set_major_locator(MaxNLocator(nbins=16, steps=[1, 2, 3, 5, 6, 10]))
    axis.xaxis.set_major_formatter(FuncFormatter(clock))
    axis.set_xlabel("time (mm:ss)")
    figure.legend(
        handles=[Patch(color=colours[i], label=label) for i, label in enumerate(labels)],
        loc="upper right",
        ncol=min(len(labels), 8),
        fontsize=8,
        frameon=False,
    )
    emotion = result.get("emotion")
    probability = (result.get("probabilities") or {}).get(emotion, 0.0)
    title = (
        f"{str(result['clip']).split('/')[-1]}: {'voice ' if face_channel else ''}{emotion} ({probability:.2f}) "
        f"over {clock(total)}, {len(windows)} windows of {result['window_seconds']} s"
    )
    footer = result.get("rule", "")
    if face_channel:
        face = result["face_expression"]
        shown = (
            f"{face['emotion']} ({face['probabilities'][face['emotion']]:.2f})"
            if face["emotion"]
            else NO_FACE
        )
        title += f"\nface ({face['model']}): {shown}, shown beside the voice, not fused"
        footer += f". Face: {face['model']}, shown beside the voice; no fusion of the two has been measured"
    figure.suptitle(title, x=0.01, ha="left", fontsize=11)
    figure.text(0.01, 0.005, footer, fontsize=7, color="grey")
    figure.tight_layout(rect=(0, 0.02, 1, 0.92 if face_channel else 0.95))
    return figure


def timeline_png(result: dict) -> bytes:
    """Renders a `Predictor.predict` result as PNG bytes."""
    figure = timeline_figure(result)  # selects the Agg backend before pyplot is imported here
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()
