"""The prediction timeline figure, drawn from hand-made `Predictor.predict` results."""

import pytest

from mater_tf.reporting.timeline import timeline_figure, timeline_png

LABELS = ["anger", "happy", "sad"]


def result(face: bool) -> dict:
    """Three 0.5 s windows; the face either found in every one or nowhere."""
    windows = []
    for index in range(3):
        window = {"start": index * 0.5, "audio_present": True, "face_present": face}
        window["face_frames_found"] = 12 if face else 0
        window["audio_probabilities"] = [0.2, 0.1, 0.7]
        if face:
            window["face_probabilities"] = [0.6, 0.3, 0.1]
        windows.append(window)
    attention = {"audio_attention_0": [[[1 / 3] * 3] * 3] * 2}
    if face:
        attention["face_attention_0"] = [[[1 / 3] * 3] * 3] * 2
    return {
        "clip": "clips/someone.mp4",
        "labels": LABELS,
        "emotion": "sad",
        "probabilities": {"anger": 0.2, "happy": 0.1, "sad": 0.7},
        "window_seconds": 0.5,
        "windows": windows,
        "attention": attention,
        "audio_emotion": "sad",
        "audio_probabilities": {"anger": 0.2, "happy": 0.1, "sad": 0.7},
        "face": "found" if face else "no face",
        "face_emotion": "anger" if face else None,
        "face_probabilities": {"anger": 0.6, "happy": 0.3, "sad": 0.1} if face else None,
    }


def texts(axis) -> list[str]:
    return [text.get_text() for text in axis.texts]


@pytest.mark.parametrize("face", [True, False])
def test_face_rows_say_no_face_instead_of_scores(face):
    figure = timeline_figure(result(face))
    audio, face_scores, _, face_attention, frames = figure.axes[:5]
    assert len(audio.get_lines()) == len(LABELS) and "sad (0.70)" in audio.get_title()
    if face:
        assert len(face_scores.get_lines()) == len(LABELS) and "anger (0.60)" in face_scores.get_title()
        assert face_attention.images and not texts(face_attention)
    else:
        assert face_scores.get_lines() == [] and texts(face_scores) == ["no face"]
        assert "no face" in face_scores.get_title()
        assert not face_attention.images and texts(face_attention) == ["no face"]
    assert [bar.get_height() for bar in frames.patches] == ([12] * 3 if face else [0] * 3)


def test_png_of_a_clip_without_a_face():
    assert timeline_png(result(face=False))[:4] == b"\x89PNG"
