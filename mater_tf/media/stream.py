"""Reading a clip or a live stream window by window, in one pass, with bounded memory.

`stream_windows` demuxes a container's audio and video packets together
(PyAV), so a file, a URL or a capture device is read the same way, and yields
each window of `window_seconds` as soon as all of its audio and frames have
arrived. Only the current window's frames and a window of audio are held.

The samples and frames are those of `MediaFile.decode_audio_track` and
`decode_video` (`mater_tf.media.media_file`): the same 16 kHz resampler fed the
same audio frames, the same origin (the container's start; a later audio track
is preceded by silence: `mater_tf.media.audio_track.origin_offset`), frames
scaled to the same size (`mater_tf.media.frames.scaled_size`), frame times from
the same origin. So a window read here holds what the whole-file decoders give
for its span.

A window is emitted when it is complete, or at the end of the stream when at
least half of it holds audio (`mater_tf.media.window_presence`, the rule of
`Windowing.present`), so the windows read form the clip's present windows, in
order.

`realtime=True` reads a file at its own pace (a packet is read when its time
has come on the wall clock since the first), as a camera or a live URL
delivers it.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Iterator

import numpy as np

from mater_tf.media.audio_track import audio_resampler, mono, origin_offset
from mater_tf.media.containers import container_origin, moving_video
from mater_tf.media.errors import MediaError
from mater_tf.media.formats import SAMPLE_RATE
from mater_tf.media.frames import rgb_frame, scaled_size
from mater_tf.media.window_presence import SECONDS_TOLERANCE, is_present, seconds_inside


@dataclasses.dataclass
class MediaWindow:
    """One window of a stream: its audio for the log-mel, its frames, and when it was complete."""

    index: int
    start: float  # seconds from the origin
    end: float
    samples: np.ndarray  # float32: the audio span asked for by `audio_span` (shorter at the clip end)
    inside: float  # seconds of the window that hold audio (the window length but for the last)
    frames: np.ndarray  # uint8 [n, H, W, 3]; [0, 0, 0, 3] for audio only
    frame_times: np.ndarray  # float64 [n]
    completed_at: float  # time.monotonic() when its last sample or frame was read
    due_at: float | None = None  # realtime reading: time.monotonic() at which its end was played
    backlog: int = 0  # read ahead: windows already read behind this one, waiting to be scored


def _open_source(source: str, input_format: str | None):
    import av

    try:
        return av.open(str(source), format=input_format)
    except (av.error.FFmpegError, OSError, ValueError) as error:  # ValueError: an unknown format
        raise MediaError(
            f"{source}: cannot be opened as media ({error}); give a readable file, a URL or a device "
            "(with --live-format for a device, e.g. v4l2)"
        ) from None


def stream_windows(
    source,
    window_seconds: float,
    audio_span: Callable[[int], tuple[int, int]],
    video: bool = True,
    max_side: int = 640,
    realtime: bool = False,
    input_format: str | None = None,
    stop: Callable[[], bool] | None = None,
) -> Iterator[MediaWindow]:
    """Yields the windows of `source` as they complete (see the module doc).

    Args:
        source: a file path, URL or device name FFmpeg opens.
        window_seconds: d.
        audio_span: window index -> (first sample, sample count) of the audio
            that window's log-mel needs (sample 0 = the origin).
        video: read the frames too (when the source has a video stream).
        max_side: longest side of the frames, as `decode_video`.
        realtime: read no faster than the media's own clock.
        input_format: FFmpeg's input format (`v4l2`, `avfoundation`, ...), for devices.
        stop: polled between packets; True ends the stream as if it had ended there.

    Raises:
        MediaError: no audio stream, or nothing decodable.
    """
    import av

    container = _open_source(source, input_format)
    with container:
        if not container.streams.audio:
            raise MediaError(f"{source}: has no audio track; MATER needs the voice (use a clip with sound)")
        audio_stream = container.streams.audio[0]
        video_stream = (moving_video(container) or [None])[0] if video else None
        size = None
        if video_stream is not None:
            size = scaled_size(video_stream.codec_context.width, video_stream.codec_context.height, max_side)
        origin = container_origin(container)
        resampler = audio_resampler()
        state = _State(window_seconds, audio_span, video_stream is not None)
        if audio_stream.duration and audio_stream.time_base:
            # A video that goes on after its sound: frames past the declared audio (and a margin of
            # two windows for an inexact header) are in no present window, so they are not held.
            track_start = audio_stream.start_time if audio_stream.start_time is not None else 0
            audio_end = float((track_start + audio_stream.duration) * audio_stream.time_base) - origin
            state.frames_until = audio_end + 2 * window_seconds
        wall_start, media_start = None, None
        streams = [audio_stream] + ([video_stream] if video_stream is not None else [])
        try:
            for packet in container.demux(*streams):
                if stop is not None and stop():
                    break
                if realtime and packet.pts is not None and packet.time_base is not None:
                    media_time = float(packet.pts * packet.time_base)
                    if wall_start is None:
                        wall_start, media_start = time.monotonic(), media_time
                        state.clock = wall_start + origin - media_start
                    delay = wall_start + (media_time - media_start) - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                for frame in packet.decode():
                    if packet.stream.type == "audio":
                        state.add_audio(frame, resampler, origin)
                    elif frame.pts is not None:
                        frame_time = float(frame.pts * video_stream.time_base) - origin
                        state.add_frame(frame, frame_time, size)
                yield from state.complete_windows()
        except av.error.FFmpegError as error:
            if not state.samples_read:
                raise MediaError(f"{source}: audio cannot be decoded ({error})") from None
        for chunk in resampler.resample(None):
            state.add_samples(mono(chunk))
        state.video_ended = True
        if not state.samples_read:
            raise MediaError(f"{source}: the audio track holds no samples")
        yield from state.complete_windows(final=True)


class _State:
    """The audio and frames read but not yet emitted, and the next window's index."""

    def __init__(self, window_seconds, audio_span, has_video):
        self.window_seconds = window_seconds
        self.audio_span = audio_span
        self.video_ended = not has_video
        self.has_video = has_video
        self.buffer_start = 0  # absolute index of self.buffer's first sample
        self.chunks = collections.deque()
        self.buffered = 0
        self.samples_read = 0  # absolute: samples from the origin so far
        self.to_drop = 0  # samples before the origin still to drop
        self.track_started = False
        self.frames, self.frame_times = [], []
        self.last_frame_time = -np.inf
        self.next_window = 0
        self.clock = None  # realtime: monotonic time of the origin
        self.frames_until = np.inf  # frames from then on are past the audio: not kept

    def add_audio(self, frame, resampler, origin):
        if not self.track_started:
            self.track_started = True
            offset = origin_offset(frame, origin)
            if offset > 0:
                self.add_samples(np.zeros(offset, np.float32))
            else:
                self.to_drop = -offset
        for chunk in resampler.resample(frame):
            self.add_samples(mono(chunk))

    def add_samples(self, samples):
        samples = np.asarray(samples, np.float32)
        if self.to_drop:
            dropped = min(self.to_drop, len(samples))
            samples, self.to_drop = samples[dropped:], self.to_drop - dropped
        if len(samples):
            self.chunks.append(samples)
            self.buffered += len(samples)
            self.samples_read += len(samples)

    def add_frame(self, frame, frame_time, size):
        self.last_frame_time = max(self.last_frame_time, frame_time)
        if frame_time < self.next_window * self.window_seconds or frame_time >= self.frames_until:
            return  # before the windows still to come (or before the origin), or after the audio
        self.frames.append(rgb_frame(frame, size))
        self.frame_times.append(frame_time)

    def _audio(self, first, count):
        """Samples [first, first + count) (fewer at the end); drops what no later window needs."""
        if self.chunks and (len(self.chunks) > 1):
            merged = np.concatenate(list(self.chunks))
            self.chunks = collections.deque([merged])
        buffer = self.chunks[0] if self.chunks else np.zeros(0, np.float32)
        piece = buffer[max(0, first - self.buffer_start) : max(0, first + count - self.buffer_start)]
        return piece.copy()

    def _release(self, before):
        """Forgets the samples before absolute index `before`."""
        if not self.chunks or before <= self.buffer_start:
            return
        buffer = np.concatenate(list(self.chunks))
        cut = min(len(buffer), before - self.buffer_start)
        self.chunks = collections.deque([buffer[cut:]])
        self.buffer_start += cut
        self.buffered = len(buffer) - cut

    def complete_windows(self, final=False):
        while True:
            index = self.next_window
            start, end = index * self.window_seconds, (index + 1) * self.window_seconds
            first, count = self.audio_span(index)
            end_sample = max(round(end * SAMPLE_RATE), first + count)
            if not final:
                if self.samples_read < end_sample:
                    return
                if not self.video_ended and self.last_frame_time < end - SECONDS_TOLERANCE:
                    return
            inside = float(seconds_inside(self.samples_read / SAMPLE_RATE, start, self.window_seconds))
            if not is_present(inside, self.window_seconds):
                return
            times = np.asarray(self.frame_times, np.float64)
            mine = (times >= start) & (times < end)
            frames = [frame for frame, keep in zip(self.frames, mine) if keep]
            window = MediaWindow(
                index=index,
                start=start,
                end=end,
                samples=self._audio(first, count),
                inside=inside,
                frames=np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8),
                frame_times=times[mine],
                completed_at=time.monotonic(),
                due_at=None if self.clock is None else self.clock + start + inside,
            )
            later = times >= end
            self.frames = [frame for frame, keep in zip(self.frames, later) if keep]
            self.frame_times = list(times[later])
            self.next_window += 1
            next_first, _ = self.audio_span(self.next_window)
            self._release(min(next_first, round(end * SAMPLE_RATE)))
            yield window


def waveform_windows(
    waveform: np.ndarray, window_seconds: float, audio_span: Callable[[int], tuple[int, int]]
) -> Iterator[MediaWindow]:
    """The present windows of an already decoded 16 kHz waveform (audio files), as `stream_windows` cuts them."""
    duration = len(waveform) / SAMPLE_RATE
    index = 0
    while True:
        start = index * window_seconds
        inside = float(seconds_inside(duration, start, window_seconds))
        if not is_present(inside, window_seconds):
            return
        first, count = audio_span(index)
        yield MediaWindow(
            index=index,
            start=start,
            end=start + window_seconds,
            samples=np.asarray(waveform[first : first + count], np.float32),
            inside=inside,
            frames=np.zeros((0, 0, 0, 3), np.uint8),
            frame_times=np.zeros(0, np.float64),
            completed_at=time.monotonic(),
        )
        index += 1
