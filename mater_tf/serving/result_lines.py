"""The terminal's words for a prediction: the model that predicts, a clip's verdict, and the
face channel beside the voice (predict prints them for whole clips and live streams alike)."""

from __future__ import annotations


def builtin_line(predictor) -> str:
    """Which built-in model predicts, its checksum and where its card is."""
    model = predictor.builtin
    line = (
        f"model: {model.name} (built-in, sha256 {model.sha256[:12]}; its card: mater-tf models {model.name})"
    )
    if predictor.face_expression is not None:
        line += (
            f"; where a video shows a face, {predictor.face_expression.model_name} reads it beside the "
            "voice (shown side by side, not fused)"
        )
    return line


def result_line(result: dict) -> str:
    """A clip's verdict: the fused emotion with its probability, then each modality's (or the face
    channel's beside the voice)."""
    modalities = ", ".join(
        f"{m} {result[f'{m}_emotion']}" if result[f"{m}_emotion"] else "no face"
        for m in ("audio", "face")
        if f"{m}_emotion" in result
    )
    verdict = f"{result['emotion']} ({result['probabilities'][result['emotion']]:.2f})"
    if "face_expression" in result:  # a voice model, the face beside it
        face = result["face_expression"]
        return (
            f"voice {verdict}; {face_words(face['emotion'], face['probabilities'], result['frames_decoded'])}"
        )
    return f"{verdict}; {modalities}"


def face_words(emotion, probabilities, frames: int) -> str:
    """The face channel's words: its emotion beside the voice's, never fused with it."""
    if not emotion:
        return "face: no face" if frames else "face: no video"
    return f"face {emotion} ({probabilities[emotion]:.2f}, beside the voice, not fused)"
