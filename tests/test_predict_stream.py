"""The streaming reader under `mater-tf predict`: window edges at odd frame rates, the last partial
window, bounded read-ahead, and output names that never collide (no model, no MTCNN)."""

import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from mater_tf.media import decode_audio_track, decode_video
from mater_tf.media.read_ahead import read_ahead
from mater_tf.media.stream import stream_windows

WINDOW = 0.5


def write_clip(path, seconds, rate=Fraction(30000, 1001), audio_rate=44100):
    """An mp4 of `seconds`: frames at `rate` frames/s (grey levels counting up), a stereo tone."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=rate)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=audio_rate)
        audio.layout = "stereo"
        for index in range(int(seconds * rate)):
            image = np.full((48, 64, 3), index * 3 % 255, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        times = np.arange(round(seconds * audio_rate)) / audio_rate
        tone = (0.3 * np.sin(2 * np.pi * 220 * times)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            piece = np.stack([tone[start : start + 1024]] * 2)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="fltp", layout="stereo")
            frame.sample_rate = audio_rate
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))


def span(window):
    """The audio of a 0.5 s window: its own 8000 samples (the log-mel span is checked elsewhere)."""
    return window * 8000, 8000


@pytest.mark.parametrize("seconds", [2.3, 2.2])
def test_stream_windows_hold_what_the_whole_file_decoders_give(tmp_path, seconds):
    """At 29.97 frames/s, every window's frames are those shown in [start, end) and its samples
    are those of the whole track; the last window counts when at least half of it has audio."""
    path = tmp_path / "clip.mp4"
    write_clip(path, seconds)
    waveform, video = decode_audio_track(path), decode_video(path)
    duration = len(waveform) / 16000
    windows = list(stream_windows(path, WINDOW, span))
    # Hand count: 2.3 s holds 4 whole windows and 0.3 s (>= half) of a fifth; 2.2 s only 0.2 s of it.
    # (AAC's priming can move the decoded length by a few ms, never across the half-window line.)
    expected = 5 if seconds == 2.3 else 4
    assert len(windows) == expected
    assert [w.index for w in windows] == list(range(expected))
    assert [w.start for w in windows] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0][:expected])
    assert all(w.inside == pytest.approx(WINDOW) for w in windows[:4])
    if expected == 5:
        assert windows[-1].inside == pytest.approx(duration - 2.0)
    for window in windows:
        mine = (video.times >= window.start) & (video.times < window.end)
        np.testing.assert_allclose(window.frame_times, video.times[mine])
        np.testing.assert_array_equal(window.frames, video.frames[mine])
        np.testing.assert_array_equal(
            window.samples, waveform[window.index * 8000 : window.index * 8000 + 8000]
        )
    # 0.5 s at 30000/1001 frames/s is 14.985 frames: windows hold 14 or 15 of them, none is lost.
    assert {len(w.frame_times) for w in windows[:4]} <= {14, 15}
    assert sum(len(w.frame_times) for w in windows) == int(np.sum(video.times < windows[-1].end))


def test_read_ahead_waits_for_the_scorer_instead_of_holding_the_whole_source():
    """A source read faster than it is scored (a file on --live without --realtime) is held back
    once `max_waiting` windows wait, so the frames in memory stay bounded."""
    read = []

    def source():
        for index in range(500):
            read.append(index)
            yield index

    stop = threading.Event()
    windows = read_ahead(_Windows(source()), stop, max_waiting=8)
    assert next(windows).index == 0
    time.sleep(1.0)  # the scorer busy with the first window
    assert len(read) <= 8 + 3
    assert [w.index for w in windows] == list(range(1, 500))  # nothing lost, in order
    assert stop.is_set()


def test_read_ahead_stops_a_reader_held_back_when_closed():
    stop = threading.Event()
    windows = read_ahead(_Windows(iter(range(1000))), stop, max_waiting=4)
    next(windows)
    windows.close()
    assert stop.is_set()
    reader = [t for t in threading.enumerate() if t.name == "mater-tf-reader"]
    assert not reader or not any(t.is_alive() for t in reader)


class _Windows:
    """Wraps indices as stand-ins for MediaWindows (read_ahead sets `backlog` on each)."""

    def __init__(self, indices):
        self.indices = indices

    def __iter__(self):
        for index in self.indices:
            yield _Window(index)


class _Window:
    def __init__(self, index):
        self.index, self.backlog = index, 0


def test_output_names_are_unique_and_leave_the_run_files_alone():
    from mater_tf.serving.prediction_files import output_names

    paths = ["/d/a/x.mp4", "/d/b/x.mp4", "/d/a_x.mp4", "/e/summary.wav", "/e/Clip.mp4", "/f/clip.wav"]
    names = output_names(paths, reserved=("summary", "score", "confusion"))
    assert names["/d/b/x.mp4"] == "b_x" and names["/e/summary.wav"] == "e_summary"
    # a/x.mp4 and the file a_x.mp4 would both be a_x; Clip and clip are one file on macOS / Windows.
    assert len({name.casefold() for name in names.values()}) == len(paths)
    assert not {"summary", "score", "confusion"} & set(names.values())


def test_a_video_that_goes_on_after_its_sound_does_not_hold_its_frames(tmp_path, monkeypatch):
    """20 s of frames over 2 s of sound: the windows are the sound's 4, with the frames the whole-file
    decoder shows in them, and the frames after the sound are not kept waiting for audio that never
    comes (they were: 450 of the 500 frames, about 12 GB for ten minutes of 640x360 video)."""
    import av

    from mater_tf.media import stream

    path = tmp_path / "long_picture.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for index in range(25 * 20):
            image = np.full((48, 64, 3), index % 255, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        tone = (0.3 * np.sin(np.arange(32000) / 10)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(
                tone[None, start : start + 1024].copy(), format="flt", layout="mono"
            )
            frame.sample_rate = 16000
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    held, add_frame = [], stream._State.add_frame

    def counting(state, *args):
        add_frame(state, *args)
        held.append(len(state.frames))

    monkeypatch.setattr(stream._State, "add_frame", counting)
    windows = list(stream_windows(path, WINDOW, span))
    decoded = decode_video(path)
    assert [w.index for w in windows] == [0, 1, 2, 3]
    for window in windows:
        mine = (decoded.times >= window.start) & (decoded.times < window.end)
        np.testing.assert_array_equal(window.frames, decoded.frames[mine])
    assert max(held) <= 25 * 2  # about a second of frames ahead of the audio (plus a margin), not 18 s
