"""The prediction timeline figure, drawn from hand-made `Predictor.predict` results."""

import numpy as np
import pytest

from mater_tf.reporting.timeline import bar_colours, clock, timeline_figure, timeline_png

LABELS = ["anger", "happy", "sad"]


def result(face: bool, windows: int = 3) -> dict:
    """`windows` 0.5 s windows, voice says sad; the face (anger) found in every frame or nowhere."""
    rows = []
    for index in range(windows):
        rows.append(
            {
                "index": index,
                "start": index * 0.5,
                "end": index * 0.5 + 0.5,
                "emotion": "sad",
                "probabilities": [0.2, 0.1, 0.7],
                "audio_probabilities": [0.2, 0.1, 0.7],
                "face_probabilities": [0.6, 0.3, 0.1] if face else None,
                "face_found": face,
                "face_frames_found": 12 if face else 0,
                "frames": 12,
                "attention": {"audio": 0.3, **({"face": 0.2} if face else {})},
            }
        )
    return {
        "clip": "clips/someone.mp4",
        "labels": LABELS,
        "emotion": "sad",
        "probabilities": {"anger": 0.2, "happy": 0.1, "sad": 0.7},
        "rule": "clip emotion = highest mean fused probability over all windows",
        "window_seconds": 0.5,
        "windows": rows,
        "audio_emotion": "sad",
        "audio_probabilities": {"anger": 0.2, "happy": 0.1, "sad": 0.7},
        "face": "found" if face else "no face",
        "face_emotion": "anger" if face else None,
        "face_probabilities": {"anger": 0.6, "happy": 0.3, "sad": 0.1} if face else None,
    }


def texts(axis) -> list[str]:
    return [text.get_text() for text in axis.texts]


def test_clock_reads_minutes_and_hours():
    assert [clock(s) for s in (0, 59.6, 61, 600, 3725)] == ["00:00", "01:00", "01:01", "10:00", "1:02:05"]


def test_bar_colour_is_the_emotion_paler_when_unsure():
    colours = np.eye(3)
    cells = bar_colours([[0.1, 0.1, 0.8], [0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3], None], colours)[0]
    assert cells[1].tolist() == [0.0, 0.0, 1.0]  # certain: the label's own colour
    assert cells[0][2] == 1.0 and 0 < cells[0][0] < 1  # less sure: the same hue, paler
    assert cells[2].tolist() == pytest.approx([1.0, 0.75, 0.75])  # chance: palest shade of label 0
    assert cells[3].tolist() == [0.85, 0.85, 0.85]  # no probabilities (no face): grey


@pytest.mark.parametrize("face", [True, False])
def test_face_bar_says_no_face_and_the_track_shows_frames_found(face):
    figure = timeline_figure(result(face))
    fused, audio, face_bar, _, attention, found = figure.axes[:6]
    assert [axis.get_ylabel() for axis in (fused, audio, face_bar)] == ["fused", "audio", "face"]
    assert texts(face_bar) == ([] if face else ["no face"])
    assert len(attention.get_lines()) == (2 if face else 1)
    heights = found.collections[0].get_paths()[0].vertices[:, 1]
    assert heights.max() == (1.0 if face else 0.0)


def test_a_ten_minute_timeline_is_labelled_in_minutes():
    figure = timeline_figure(result(True, windows=1200))
    axis = figure.axes[-1]
    figure.canvas.draw()
    ticks = [label.get_text() for label in axis.get_xticklabels() if label.get_text()]
    assert axis.get_xlim() == (0.0, 600.0)
    assert ticks[0] == "00:00" and ticks[-1] == "10:00" and 6 <= len(ticks) <= 17
    assert figure.axes[0].collections[0].get_array().shape[:2] == (1, 1200)  # one cell per window


def test_png_of_a_clip_without_a_face():
    assert timeline_png(result(face=False))[:4] == b"\x89PNG"
