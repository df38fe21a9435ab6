"""Decoding media: video frames and audio tracks (PyAV), plain audio files (TensorFlow ops).

Everything comes out as 16 kHz mono float32 audio in [-1, 1] (channels
averaged) and RGB uint8 frames with their presentation times in seconds.

Both streams of a container are timed from one origin, the container's start
(the earliest start time of its audio and video streams): a frame's time is
its presentation time minus the origin, and the waveform's sample 0 is the
origin. An audio track that starts later than the origin is preceded by
silence for the gap; samples before the origin are dropped. So a sound and a
frame that play together in a player land at the same time here. (A gap in
the middle of an audio track is not filled in.)
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import re
from pathlib import Path

import numpy as np

from mater_tf.errors import UserError

SAMPLE_RATE = 16000
# Suffixes only choose a fast path: files named as audio files go to the TensorFlow graph
# (`audio_graph`), and a folder's files so named are listed without opening them. What a file is
# (media or not, moving pictures or not) is what FFmpeg finds in it: an .m4a, a .wav holding mp3.
VIDEO_SUFFIXES = (".mp4", ".flv", ".avi", ".mov", ".mkv", ".webm", ".m4v")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg")


class MediaError(UserError):
    """A clip that cannot be used: missing, corrupt, no audio track, too short, ..."""


@dataclasses.dataclass
class Video:
    """Decoded frames of a clip (possibly downscaled) and their times."""

    frames: np.ndarray  # uint8 [n, H, W, 3]
    times: np.ndarray  # float64 [n], seconds from the container's origin
    width: int  # original size
    height: int


MEDIA_EXTRA = "pip install 'mater-tf[media]'"


def require_media_packages(faces: bool, command: str) -> None:
    """Refuses, naming the install that fixes it, when the [media] extra's packages are missing.

    Checked before any work starts: inside the decoding pipeline a missing
    package would otherwise fail every clip one by one.
    """
    import importlib.util

    needed = {"av": "av", "tensorflow_io": "tensorflow-io"}
    if faces:
        needed["mtcnn"] = "mtcnn"
    missing = [package for module, package in needed.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise UserError(f"{command} needs the media extra (missing: {', '.join(missing)}): {MEDIA_EXTRA}")


def check_readable(path: str | Path) -> Path:
    """The path, when it names a non-empty file (what it holds is FFmpeg's to judge)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file")
    return path


@functools.lru_cache(maxsize=1)
def ffmpeg_suffixes() -> frozenset[str]:
    """The file suffixes FFmpeg's demuxers name (".m4a", ".aac", ".opus", ...) and ours."""
    import av

    suffixes = set(VIDEO_SUFFIXES + AUDIO_SUFFIXES)
    for name in av.formats_available:
        try:
            extensions = av.ContainerFormat(name, "r").extensions
        except ValueError:  # a muxer only
            continue
        suffixes.update(f".{extension.strip().lower()}" for extension in extensions or ())
    return frozenset(suffixes)


@dataclasses.dataclass(frozen=True)
class Streams:
    """What FFmpeg finds in a file: an audio stream, a video stream of moving pictures."""

    audio: bool
    video: bool


def _moving_video(container) -> list:
    """The video streams that are not a cover picture (an mp3's or m4a's album art is a
    one-frame video stream with the attached_pic disposition)."""
    import av

    return [
        stream
        for stream in container.streams.video
        if not stream.disposition & av.stream.Disposition.attached_pic
    ]


def probe(path: str | Path) -> Streams:
    """The streams FFmpeg finds in a file (opened once per version of the file).

    Raises:
        MediaError: missing, empty, or nothing FFmpeg can open.
    """
    path = check_readable(path)
    stat = path.stat()
    return _probe(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _probe(path: str, size: int, modified: int) -> Streams:
    with _open(path) as container:
        return Streams(bool(container.streams.audio), bool(_moving_video(container)))


def named_audio_file(path: str | Path) -> bool:
    """Whether `decode_audio` tries TensorFlow's readers first (the file is named as an audio file)."""
    return Path(path).suffix.lower() in AUDIO_SUFFIXES


def is_video(path: str | Path) -> bool:
    """Whether FFmpeg finds moving pictures in the file (not cover art; False where it cannot open it)."""
    try:
        return probe(path).video
    except MediaError:
        return False


def _open(path):
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        reason = getattr(error, "strerror", None) or error  # FFmpeg's words, without the path again
        raise MediaError(
            f"{path}: not readable media ({reason}); the file may be corrupt, truncated, or not audio or video"
        ) from None


def _origin(container) -> float:
    """The container's start in seconds: the earliest start time of its audio and video streams."""
    starts = [
        float(stream.start_time * stream.time_base)
        for stream in (*_moving_video(container), *container.streams.audio)
        if stream.start_time is not None and stream.time_base is not None
    ]
    if starts:
        return min(starts)
    return container.start_time / 1e6 if container.start_time is not None else 0.0  # AV_TIME_BASE


def decode_video(path: str | Path, max_side: int = 640, until_seconds: float | None = None) -> Video:
    """All frames (RGB, longest side at most `max_side`) shown before `until_seconds`.

    Times are seconds from the container's origin (see the module doc).

    Raises:
        MediaError: no video stream, corrupt data, or no frame decoded.
    """
    import av

    path = check_readable(path)
    frames, times = [], []
    with _open(path) as container:
        if not _moving_video(container):
            raise MediaError(f"{path}: has no video stream")
        stream = _moving_video(container)[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        scale = min(1.0, max_side / max(width, height)) if width and height else 1.0
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
        origin = _origin(container)
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                time = float(frame.pts * stream.time_base) - origin
                if until_seconds is not None and time >= until_seconds:
                    break
                frames.append(frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray())
                times.append(time)
        except av.error.FFmpegError as error:
            if not frames:
                raise MediaError(f"{path}: video cannot be decoded ({error})") from None
    if not frames:
        raise MediaError(f"{path}: no video frame could be decoded")
    return Video(np.stack(frames), np.asarray(times), width, height)


def declared_seconds(path: str | Path) -> float | None:
    """The length the file's header declares (container or longest stream), None when unknown.

    Compared with what decodes, it tells a truncated or corrupt file from a short one.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if container.duration:
                return container.duration / 1e6  # AV_TIME_BASE
            lengths = [
                float(stream.duration * stream.time_base)
                for stream in container.streams
                if stream.duration and stream.time_base
            ]
            return max(lengths) if lengths else None
    except (av.error.FFmpegError, OSError):
        return None


def check_not_truncated(path: str | Path, decoded: float, margin: float) -> None:
    """Refuses a file whose decoded audio (`decoded` seconds) falls short of the length its header
    declares by `margin` seconds or more: truncated or corrupt, however much is left.

    Complete files decode to within 0.06 s of their header (the CREMA-D and RAVDESS samples).

    Raises:
        MediaError: naming the file and both lengths.
    """
    declared = declared_seconds(path)
    if declared is not None and declared >= decoded + margin:
        raise MediaError(
            f"{path}: truncated or corrupt: only {decoded:.2f} s of audio decode of the {declared:.2f} s "
            "its header declares; replace it with a complete copy"
        )


def _mono(frame) -> np.ndarray:
    """The mean of a planar audio frame's channels."""
    return frame.to_ndarray().reshape(len(frame.layout.channels), -1).mean(axis=0)


def has_video_stream(path: str | Path) -> bool:
    """Whether a container holds moving pictures (an .mp4 may carry audio only; cover art is not).

    Raises:
        MediaError: a file FFmpeg cannot open.
    """
    return probe(path).video


def decode_audio_track(path: str | Path) -> np.ndarray:
    """The audio track of a container (or any file FFmpeg reads), 16 kHz mono float32.

    Sample 0 is the container's origin (see the module doc): silence pads a
    track that starts later, and a track's samples before it are dropped.

    Raises:
        MediaError: no audio stream or nothing decodable.
    """
    import av

    path = check_readable(path)
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio track; MATER needs the voice (use a clip with sound)")
        track = _AudioTrack(path, _origin(container))
        try:
            for frame in container.decode(container.streams.audio[0]):
                track.add(frame)
        except av.error.FFmpegError as error:
            track.failed(error)
        return track.waveform()


class _AudioTrack:
    """An audio track decoded frame by frame into 16 kHz mono chunks (`add`), then one
    waveform whose sample 0 is the container's origin (`waveform`): silence pads a track
    that starts later, samples before it are dropped."""

    def __init__(self, path, origin: float):
        import av

        self.path, self.origin = path, origin
        self.chunks, self.start = [], None
        # Planar float at 16 kHz in the track's own layout; the channels are averaged here, as
        # for audio files (FFmpeg's own downmix weights them: a stereo tone came out 1.41x louder).
        self.resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)

    def add(self, frame) -> None:
        if self.start is None:
            self.start = frame.time if frame.time is not None else self.origin
        self.chunks.extend(_mono(out) for out in self.resampler.resample(frame))

    def failed(self, error) -> None:
        """A decoding error ends the track where it is; before any sample it is the clip's end."""
        if not self.chunks:
            raise MediaError(f"{self.path}: audio cannot be decoded ({error})") from None

    def waveform(self) -> np.ndarray:
        self.chunks.extend(_mono(out) for out in self.resampler.resample(None))  # flush
        if not self.chunks:
            raise MediaError(f"{self.path}: the audio track holds no samples")
        waveform = np.concatenate(self.chunks).astype(np.float32)
        offset = round((self.start - self.origin) * SAMPLE_RATE)
        if offset > 0:
            return np.concatenate([np.zeros(offset, np.float32), waveform])
        return waveform[-offset:]


def op_error_reason(message: str) -> str:
    """The line of a TensorFlow op error's message that says what went wrong, without TensorFlow's
    wrapping: "sample rate 1 Hz: too far from 16000 Hz ...", "unknown file type: clip.mp3".

    A failure inside a `tf.function` begins "Graph execution error:" and a stack of the
    Python lines that built the node; the reason comes after. A failure inside a
    `tf.py_function` carries the inner error as "module.InvalidArgumentError: {{function_node
    ...}} reason [Op:...]", and an assertion its data as "[text] [value] [text]".
    """
    skipped = ("Graph execution error", "Detected at node", "File ", "[[", "Traceback", "^")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith(skipped)]
    reason = (reasons or lines or [message])[-1]
    reason = re.sub(r"^(?:[\w.]+\.)?\w+(?:Error|Exception): ", "", reason)
    reason = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", reason)
    reason = re.sub(r"\s*\[Op:[^\]]*\]$", "", reason)
    if reason.startswith("assertion failed: ["):
        parts = re.findall(r"\[([^\]]*)\]", reason)
        # assert_less_equal and friends append "Condition x <= y did not hold" and node names.
        kept = itertools.takewhile(lambda part: not part.startswith("Condition "), parts)
        reason = " ".join(kept)
    return reason.removeprefix("assertion failed: ")


def decode_audio(path: str | Path) -> np.ndarray:
    """16 kHz mono audio of any clip: TensorFlow ops for audio files, PyAV for everything else.

    Files named as audio files (`AUDIO_SUFFIXES`) go through `mater_tf.media.audio_graph` (WAV by TensorFlow, mp3/flac/ogg by
    tensorflow-io, resampled by `mater_tf.media.resample`), the same graph that
    `mater-tf prepare` maps over its clips. A file that graph cannot read (a WAV that is not
    16-bit PCM, or a .wav that holds mp3) falls back to PyAV (the same file always takes the
    same path). Any other file (.m4a, .mp4, .opus, no suffix) is read by PyAV.
    """
    path = check_readable(path)
    if not named_audio_file(path):
        return decode_audio_track(path)
    import tensorflow as tf

    from mater_tf.media import tfio_audio

    try:
        return tfio_audio.decode_audio_file(str(path))
    except (tf.errors.OpError, RuntimeError, ValueError) as error:
        # tensorflow-io names the file again ("unknown file type: /path/clip.mp3"); the line names it first.
        message = op_error_reason(getattr(error, "message", str(error))).replace(f": {path}", "")
        try:
            waveform = decode_audio_track(path)
        except MediaError:
            raise MediaError(
                f"{path}: audio cannot be decoded ({message}); the file may be corrupt"
            ) from None
        logging.getLogger(__name__).debug("%s: read by FFmpeg (TensorFlow's reader rejected it)", path)
        return waveform
