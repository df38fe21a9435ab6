"""One clip or stream scored window by window with a loaded predictor: which emotion, when, from
which modality.

Windows are embedded in blocks as they are read (`Predictor.windows`), the model's T-window input
slides over the whole clip (`mater_tf.serving.sliding` says how segments are placed and
combined), and a clip with nothing to score is refused. Per clip the result (JSON) holds:

* `emotion`, `probabilities`, `rule`: the fused decision of the whole clip
  and the rule that makes it; `votes`: windows per fused emotion;
* per modality of the model (`audio`, `face`): `{modality}_emotion` and
  `{modality}_probabilities` (label -> probability), by the same rule;
* `face` (models with the face modality): "found", or "no face" when no
  window holds a face (none found in any frame, or an audio-only file); then
  `face_emotion` and `face_probabilities` are null (the voice decides);
* `windows`: per window its start and end, fused emotion and probabilities,
  audio and face probabilities (lists in `labels` order; face null where no
  segment covering it holds a face), whether the face was found in it and in
  how many of its frames, and the attention it receives per modality;
* `segments`: every model input scored (first window, span, probabilities,
  attention received per window);
* `duration`, `num_windows`, `frames_decoded`, `face_found_rate`, `seconds`
  (wall time) and `realtime_factor` (seconds per second of media).

With a built-in model's face channel (`mater_tf.serving.face_expression`), a video's face
expression is shown beside the voice, never fused with it:

* `face_expression`: the clip's face expression (labels, emotion,
  probabilities, windows with a face, the classifier-to-voice label mapping,
  and `fusion`, which says there is none); each window's
  `face_expression` holds its 7 probabilities (null where no face);
* `face`: "found" or "no face"; `model_sha256`: the built-in's checksum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CATCH_UP_WINDOWS = 8


def score_clip(
    predictor,
    source,
    stride: int = 1,
    block_windows: int = 8,
    windows=None,
    on_window=None,
    interruptible: bool = False,
) -> dict:
    """Scores a whole clip (or stream) window by window; returns the result of the module doc.

    Args:
        predictor: a loaded `mater_tf.serving.predictor.Predictor`.
        source, stride, block_windows, windows, on_window, interruptible: as `Predictor.predict`
            takes them.

    Raises:
        MediaError: naming the file: unreadable, no audio, silent, or shorter
            than one window.
    """
    import time

    from mater_tf.serving.sliding import SlidingScorer

    started = time.perf_counter()
    scorer = SlidingScorer(predictor, stride)
    windows = predictor.windows(source) if windows is None else windows
    track_last, face_track_last, block, peak = None, None, [], 0.0
    expressions = []  # per window: the face expression's probabilities, or None

    def flush():
        nonlocal track_last, face_track_last, block
        if not block:
            return
        features, track_last = predictor.extractor.embed_windows(block, track_last)
        if predictor.face_expression is not None:
            rows, found, face_track_last = predictor.face_expression.classify_windows(block, face_track_last)
            expressions.extend(rows)
            if "face" not in predictor.modalities:  # the face found is the channel's (the model has none)
                features.face_frames_found = found
                features.face_valid = (found > 0).astype(np.int64)
        scorer.add(block, features)
        if on_window is not None:
            for offset, window in enumerate(block):
                segment = scorer.live_output(window.index)
                if predictor.face_expression is not None:
                    segment = {
                        **segment,
                        "face_expression": expressions[len(expressions) - len(block) + offset],
                    }
                on_window(window, segment)
        block = []

    interrupted = False
    try:
        for window in windows:
            if len(window.samples):
                peak = max(peak, float(np.abs(window.samples).max()))
            block.append(window)
            # A scorer that fell behind a live source scores the windows waiting as one block.
            if len(block) >= max(block_windows, CATCH_UP_WINDOWS) or (
                len(block) >= block_windows and not window.backlog
            ):
                flush()
        flush()
    except KeyboardInterrupt:
        if not interruptible:
            raise
        interrupted = True
        close = getattr(windows, "close", None)
        if close is not None:
            close()
    scorer.finish()
    _refuse_unscorable(predictor, source, scorer, peak, interrupted)
    result = {"clip": str(source), "model": predictor.model_name, **scorer.result()}
    if predictor.builtin is not None:
        result["model_sha256"] = predictor.builtin.sha256
    if predictor.face_expression is not None:
        _add_face_expression(predictor.face_expression, result, expressions)
    if interrupted:
        result["interrupted"] = True
    result["duration"] = round(scorer.ends[-1], 3)
    elapsed = time.perf_counter() - started
    result["seconds"] = round(elapsed, 3)
    result["realtime_factor"] = round(elapsed / max(result["duration"], 1e-9), 4)
    return result


def _refuse_unscorable(predictor, source, scorer, peak: float, interrupted: bool) -> None:
    """Raises MediaError for a clip whose windows say nothing: none complete, silent, cut short
    (a file whose audio ends before its length says), or no face for a face-only model."""
    from mater_tf.data.extraction import SILENCE_PEAK
    from mater_tf.media import MediaError

    seconds = predictor.metadata["window_seconds"]
    if not scorer.count:
        raise MediaError(f"{source}: shorter than one {seconds} s window (or no audio decoded)")
    if peak < SILENCE_PEAK:
        raise MediaError(f"{source}: the audio is silent (peak below {SILENCE_PEAK})")
    if not interrupted and isinstance(source, str | Path) and Path(source).is_file():
        from mater_tf.media import check_not_truncated

        # The windows scored end within half a window of the audio's end (a last window less
        # than half full is not scored): prepare's half-window margin, plus that half window.
        check_not_truncated(source, scorer.ends[-1], seconds)
    if predictor.modalities == ["face"] and not any(scorer.features["face_valid"]):
        # A face-only model has nothing to read: its "emotion" would be its bias alone.
        raise MediaError(
            f"{source}: no face found in any window (or no video), and this model reads only the face; "
            "give a video that shows the face"
        )


def _add_face_expression(face_expression, result: dict, expressions: list) -> None:
    """The face channel beside the voice: per window and for the clip (never fused with the voice)."""
    for window, row in zip(result["windows"], expressions):
        window["face_expression"] = row
    result["face_expression"] = face_expression.summary(expressions, result["labels"])
    result["face"] = "found" if result["face_expression"]["emotion"] else "no face"
