"""A live stream predicted as it plays: a line per window as soon as it is scored (its emotion,
each modality's, the face channel beside the voice, and how long after the window's end), then,
when the stream ends or Ctrl-C stops it, the whole timeline written as for a clip."""

from __future__ import annotations

import time

from mater_tf.errors import UserError
from mater_tf.serving.result_lines import face_words, result_line


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes):02d}:{secs:04.1f}"


def predict_live(
    predictor, source: str, out, realtime: bool, input_format: str | None, copy_media: bool
) -> int:
    """Predicts the live `source` (a URL, device or file FFmpeg opens) into the folder `out`.

    Args:
        realtime: read a file at its own pace, as a live source delivers it.
        input_format: FFmpeg's input format of a device (None: FFmpeg's guess).
        copy_media: copy the source beside its page.

    Returns:
        The exit code, 0.

    Raises:
        UserError: the stream could not be read or scored (MediaError's message).
    """
    import threading

    from mater_tf.features.expression import FACE_LABELS
    from mater_tf.media import MediaError
    from mater_tf.media.read_ahead import read_ahead
    from mater_tf.serving.page import model_description, write_page
    from mater_tf.serving.prediction_files import live_name, write_prediction

    labels = predictor.metadata["label_names"]
    predictor.warm_up()
    stop = threading.Event()
    windows = read_ahead(predictor.windows(source, realtime, input_format, stop.is_set, live=True), stop)
    outputs = []

    def show(window, segment):
        now = time.monotonic()
        reference = window.due_at if window.due_at is not None else window.completed_at
        probabilities = segment["probabilities"]
        best = max(range(len(labels)), key=probabilities.__getitem__)
        parts = [
            f"{_clock(window.start)}-{_clock(window.start + window.inside)} {labels[best]} {probabilities[best]:.2f}"
        ]
        for modality in ("audio", "face"):
            scores = segment.get(f"{modality}_probabilities")
            if f"{modality}_probabilities" in segment and modality in predictor.modalities:
                if scores is None:
                    parts.append(f"{modality}: no face")
                else:
                    top = max(range(len(labels)), key=scores.__getitem__)
                    parts.append(f"{modality} {labels[top]} {scores[top]:.2f}")
        if "face_expression" in segment:
            expression = segment["face_expression"] or []
            top = FACE_LABELS[max(range(len(expression)), key=expression.__getitem__)] if expression else None
            parts.append(face_words(top, dict(zip(FACE_LABELS, expression)), len(window.frame_times)))
        latency = now - reference
        parts.append(f"{latency:.2f} s after its end")
        print(" | ".join(parts), flush=True)
        outputs.append(
            {
                "index": window.index,
                "first_window": segment["first_window"],
                "windows": segment["windows"],
                "emotion": labels[best],
                "probabilities": probabilities,
                "audio_probabilities": segment.get("audio_probabilities"),
                "face_probabilities": segment.get("face_probabilities"),
                **({"face_expression": segment["face_expression"]} if "face_expression" in segment else {}),
                "latency": round(latency, 4),
                "processing": round(now - window.completed_at, 4),
            }
        )

    print(f"reading {source} (Ctrl-C ends and writes the timeline)", flush=True)
    try:
        result = predictor.predict(
            source, windows=windows, block_windows=1, on_window=show, interruptible=True
        )
    except MediaError as error:
        raise UserError(str(error)) from None
    result["live"] = {
        "source": source,
        "realtime": bool(realtime),
        "latency": "seconds from the window's end (realtime: on the media clock; live: its data read) to its line",
        "outputs": outputs,
    }
    name = live_name(source)
    json_path, csv_path, png_path = write_prediction(result, out, name)
    html_path = write_page(result, out, name, model_description(predictor), source, copy_media)
    latencies = [o["latency"] for o in outputs]
    ended = "stopped by Ctrl-C; " if result.get("interrupted") else ""
    # A Ctrl-C can land after a window is read and before its line: then no latency to report.
    timing = (
        f"latency after each window's end mean {sum(latencies) / len(latencies):.2f} s, "
        f"max {max(latencies):.2f} s"
        if latencies
        else "no window line printed"
    )
    print(
        f"{ended}{result['num_windows']} windows: {result_line(result)}; {timing} -> {json_path}, "
        f"{csv_path.name}, {png_path.name}, {html_path.name}"
    )
    return 0
