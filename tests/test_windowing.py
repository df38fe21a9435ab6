"""Window arithmetic on synthetic media whose content changes at known times.

The clips are written here with PyAV: frames that turn from black to white and
audio that turns from silence to a tone at the same container time, with each
stream free to start at its own time. A stand-in tracker "finds a face" in
every white frame, so the face windows are checked without MTCNN.
"""

from fractions import Fraction

import numpy as np
import pytest
import tensorflow as tf

from mater_tf.data.extraction import STAGES, ClipExtractor, Windowing
from mater_tf.faces import FaceTrack
from mater_tf.features import log_mel
from mater_tf.features.embedders import audio_embedder
from mater_tf.media import decode_audio, decode_audio_track, decode_video

RATE = 16000
FPS = 20  # 0.05 s frames: 0.5 s and 1.0 s fall on frame times
SILENCE = np.log(0.01)  # the log-mel of digital silence


def write_clip(
    path, seconds=2.0, switch=1.0, audio_start=0.0, video_start=0.0, audio_codec="alac", video_switch=None
):
    """An mp4: black frames then white, silence then a 440 Hz tone, both switching at `switch` s.

    Each stream's first timestamp is its `*_start` (container seconds); alac
    is lossless, so silence stays exactly zero. `video_switch` moves the
    frames' switch alone.
    """
    video_switch = switch if video_switch is None else video_switch
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream(audio_codec, rate=RATE)
        audio.layout = "mono"
        first_frame = round(video_start * FPS)
        for index in range(first_frame, round(seconds * FPS)):
            level = 255 if index / FPS >= video_switch else 0
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        times = np.arange(round(audio_start * RATE), round(seconds * RATE)) / RATE
        sound = np.where(times >= switch, 0.5 * np.sin(2 * np.pi * 440 * times), 0.0).astype(np.float32)
        for start in range(0, len(sound), 1024):
            frame = av.AudioFrame.from_ndarray(sound[None, start : start + 1024], format="flt", layout="mono")
            frame.sample_rate = RATE
            frame.pts, frame.time_base = round(audio_start * RATE) + start, Fraction(1, RATE)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))


def write_wav(path, waveform):
    path.write_bytes(tf.audio.encode_wav(np.asarray(waveform, np.float32)[:, None], RATE).numpy())


class WhiteFrameTracker:
    """Stands in for MTCNN: the face is "found" in every bright frame, boxed as the whole frame."""

    def track(self, frames, last=None, segments=None):
        boxes = np.tile(np.float32([0, 0, frames.shape[2], frames.shape[1]]), (len(frames), 1))
        return FaceTrack(boxes, frames.mean(axis=(1, 2, 3)) > 128)


class MeanColourEmbedder:
    """Stands in for a face network: a crop's mean colour."""

    name, dim = "mean-colour", 3

    def embed(self, crops):
        return crops.mean(axis=(1, 2)).astype(np.float32)


def extractor(windows=4, window_seconds=0.5, faces=True):
    return ClipExtractor(
        Windowing(windows, window_seconds),
        audio_embedder("logmel"),
        MeanColourEmbedder() if faces else None,
        WhiteFrameTracker() if faces else None,
        keep_log_mel=True,
    )


@pytest.mark.parametrize(("window_seconds", "frames"), [(0.5, 48), (0.25, 23)])
def test_audio_window_is_the_log_mel_of_exactly_its_samples(window_seconds, frames):
    # floor((d * 16000 - 400) / 160) + 1 frames: every 25 ms frame lies inside its window
    waveform = np.random.default_rng(0).uniform(-0.5, 0.5, int(2.3 * RATE)).astype(np.float32)
    windows = 4 if window_seconds == 0.5 else 8
    _, valid, patches = extractor(windows, window_seconds, faces=False).audio_windows(
        waveform, dict.fromkeys(STAGES, 0.0)
    )
    assert patches.shape == (windows, frames, 64)
    samples = round(window_seconds * RATE)
    for window in range(windows):
        alone = log_mel(waveform[window * samples : (window + 1) * samples]).numpy()
        assert alone.shape == (frames, 64)
        np.testing.assert_allclose(patches[window], alone, atol=2e-5)
    assert valid.tolist() == [1] * windows


def test_present_rule_is_one_for_audio_and_face():
    windowing = Windowing(4, 0.5)
    assert windowing.present(2.0).tolist() == [1, 1, 1, 1]
    assert windowing.present(1.25).tolist() == [1, 1, 1, 0]  # window 2 lies half inside
    assert windowing.present(1.24).tolist() == [1, 1, 0, 0]
    assert windowing.present(0.2).tolist() == [0, 0, 0, 0]
    assert windowing.present(1.25, np.array([3, 0, 2, 2])).tolist() == [1, 0, 1, 0]


@pytest.mark.parametrize(("seconds", "present"), [(1.25, [1, 1, 1, 0]), (1.24, [1, 1, 0, 0])])
def test_clip_ending_mid_window(tmp_path, seconds, present):
    tone = 0.5 * np.sin(np.arange(round(seconds * RATE)) * 0.2)
    write_wav(tmp_path / "short.wav", tone)
    record = extractor(faces=False).extract(str(tmp_path / "short.wav"), "short").record
    assert record.audio_valid.tolist() == present
    # The same rule for the face: white from the start, audio and frames ending mid-window.
    write_clip(tmp_path / "short.mp4", seconds=seconds, switch=0.0)
    record = extractor().extract(str(tmp_path / "short.mp4"), "short").record
    assert record.audio_valid.tolist() == present and record.face_valid.tolist() == present
    assert record.face_frames_found.tolist() == [10, 10, 5, 0]  # window 2 shows a face either way
    np.testing.assert_array_equal(record.face_embedding[present.index(0) :], 0.0)


def assert_change_seen_from_window_2(record, exact):
    """Audio windows 0-1 silent and 2-3 loud; the face found only in windows 2-3 (10 frames each)."""
    patches = record.audio_log_mel
    loudness = patches.max(axis=2).mean(axis=1)  # the tone's band, averaged over the window's frames
    if exact:  # lossless audio: the silent windows hold no tone frame at all
        np.testing.assert_allclose(patches[:2], SILENCE, atol=1e-5)
    else:  # AAC smears a few ms around the switch
        assert loudness[:2].max() < SILENCE + 0.5
    assert loudness[2:].min() > SILENCE + 5.0
    assert record.face_frames_found.tolist() == [0, 0, 10, 10]
    assert record.face_valid.tolist() == [0, 0, 1, 1] and record.audio_valid.tolist() == [1, 1, 1, 1]


def test_a_change_at_one_second_is_seen_from_window_2(tmp_path):
    path = tmp_path / "switch.mp4"
    write_clip(path)
    assert_change_seen_from_window_2(extractor().extract(str(path), "switch").record, exact=True)


@pytest.mark.parametrize("audio_codec", ["alac", "aac"])
@pytest.mark.parametrize(("audio_start", "video_start"), [(0.5, 0.0), (0.0, 0.5)])
def test_streams_starting_at_different_times_share_one_origin(
    tmp_path, audio_codec, audio_start, video_start
):
    path = tmp_path / "late.mp4"
    write_clip(path, audio_start=audio_start, video_start=video_start, audio_codec=audio_codec)
    waveform = decode_audio_track(path)
    onset = np.argmax(np.abs(waveform) > 0.05) / RATE
    assert onset == pytest.approx(1.0, abs=0.002)
    assert len(waveform) / RATE == pytest.approx(2.0, abs=0.1)  # AAC pads its last frame
    np.testing.assert_array_equal(decode_audio(path), waveform)
    video = decode_video(path)
    assert video.times[0] == pytest.approx(video_start)
    assert video.times[np.argmax(video.frames.mean(axis=(1, 2, 3)) > 128)] == pytest.approx(1.0)
    record = extractor().extract(str(path), "late").record
    assert_change_seen_from_window_2(record, exact=audio_codec == "alac")


def test_video_with_no_face_anywhere_keeps_its_voice(tmp_path):
    path = tmp_path / "nobody.mp4"
    write_clip(path, switch=0.0, video_switch=99.0)  # a voice from the start, never a white frame
    extraction = extractor().extract(str(path), "nobody")
    record = extraction.record
    assert record.audio_valid.tolist() == [1, 1, 1, 1]
    assert record.face_valid.tolist() == [0, 0, 0, 0] and record.face_frames_found.tolist() == [0, 0, 0, 0]
    np.testing.assert_array_equal(record.face_embedding, 0.0)
    assert extraction.face_found_rate == 0.0 and extraction.face_windows == 0


def test_windows_shorter_than_one_log_mel_frame_are_refused():
    from mater_tf.data.extraction import build_extractor
    from mater_tf.errors import UserError

    assert Windowing(4, 0.025).frames_per_window == 1  # one 400-sample frame fits exactly
    with pytest.raises(UserError, match=r"--window-seconds 0.02 is shorter than one 0.025 s log-mel frame"):
        build_extractor(4, 0.02, ["audio"], None, "logmel")
