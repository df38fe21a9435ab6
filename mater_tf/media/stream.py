"""Reading a clip or a live stream window by window, in one pass, with bounded memory.

`stream_windows` demuxes a container's audio and video packets together
(PyAV), so a file, a URL or a capture device is read the same way, and yields
each window of `window_seconds` as soon as all of its audio and frames have
arrived. Only the current window's frames and a window of audio are held.

The samples and frames are those of `mater_tf.media.decode_audio_track` and
`decode_video`: the same 16 kHz resampler fed the same audio frames, the same
origin (the container's start; a later audio track is preceded by silence),
frames scaled to the same size, frame times from the same origin. So a
window read here holds what the whole-file decoders give for its span.

A window is emitted when it is complete, or at the end of the stream when at
least half of it holds audio (the rule of `Windowing.present`), so the
windows read form the clip's present windows, in order.

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

from mater_tf.media import SAMPLE_RATE, MediaError, _mono, _moving_video, _origin

_SECONDS_TOLERANCE = 1e-9
# Windows read ahead of the scorer at most (about 32 s of 0.5 s windows; a few MB of frames each).
READ_AHEAD_WINDOWS = 64


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
        video_stream = (_moving_video(container) or [None])[0] if video else None
        size = None
        if video_stream is not None:
            width, height = video_stream.codec_context.width, video_stream.codec_context.height
            scale = min(1.0, max_side / max(width, height)) if width and height else 1.0
            size = (max(2, round(width * scale)), max(2, round(height * scale)))
        origin = _origin(container)
        resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)
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
            state.add_samples(_mono(chunk))
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
            track_start = frame.time if frame.time is not None else origin
            offset = round((track_start - origin) * SAMPLE_RATE)
            if offset > 0:
                self.add_samples(np.zeros(offset, np.float32))
            else:
                self.to_drop = -offset
        for chunk in resampler.resample(frame):
            self.add_samples(_mono(chunk))

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
        image = frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()
        self.frames.append(image)
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
                if not self.video_ended and self.last_frame_time < end - _SECONDS_TOLERANCE:
                    return
            inside = min(self.window_seconds, max(0.0, self.samples_read / SAMPLE_RATE - start))
            if 2 * inside < self.window_seconds - _SECONDS_TOLERANCE:
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
        inside = min(window_seconds, max(0.0, duration - start))
        if 2 * inside < window_seconds - _SECONDS_TOLERANCE:
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


def read_ahead(
    windows: Iterator[MediaWindow], stop, max_waiting: int = READ_AHEAD_WINDOWS
) -> Iterator[MediaWindow]:
    """Runs `windows` (a `stream_windows` made with `stop=stop.is_set`) in a thread, so the source is
    read at its own pace however long each window takes to score; yields them in order.

    At most `max_waiting` windows wait to be scored: a source read faster than it is scored (a file
    given to --live without --realtime) is then read only as fast as it is scored, instead of
    holding all its frames in memory. Closing the iterator (or Ctrl-C while waiting) sets `stop`,
    which ends the reading.
    """
    import queue
    import threading

    items: queue.Queue = queue.Queue(maxsize=max_waiting + 1)  # + 1: the end marker or an error
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read():
        try:
            for window in windows:
                if not put(window):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            put(error)
        put(done)

    thread = threading.Thread(target=read, name="mater-tf-reader", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = items.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            item.backlog = items.qsize()
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
