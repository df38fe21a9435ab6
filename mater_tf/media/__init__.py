"""Decoding media: video frames and audio tracks (PyAV), plain audio files (tensorflow-io).

Everything comes out as 16 kHz mono float32 audio in [-1, 1] (channels
averaged) and RGB uint8 frames with their presentation times in seconds.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from mater_tf.errors import UserError

SAMPLE_RATE = 16000
VIDEO_SUFFIXES = (".mp4", ".flv", ".avi", ".mov", ".mkv", ".webm", ".m4v")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg")


class MediaError(UserError):
    """A clip that cannot be used: missing, corrupt, no audio track, too short, ..."""


@dataclasses.dataclass
class Video:
    """Decoded frames of a clip (possibly downscaled) and their times."""

    frames: np.ndarray  # uint8 [n, H, W, 3]
    times: np.ndarray  # float64 [n], seconds from the clip start
    width: int  # original size
    height: int


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def check_readable(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file")
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
        raise MediaError(
            f"{path}: unknown media type '{suffix}'; use one of {', '.join(VIDEO_SUFFIXES + AUDIO_SUFFIXES)}"
        )
    return path


def _open(path):
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise MediaError(
            f"{path}: not readable media ({error}); the file may be corrupt or truncated"
        ) from None


def decode_video(path: str | Path, max_side: int = 640, until_seconds: float | None = None) -> Video:
    """All frames (RGB, longest side at most `max_side`) up to `until_seconds`.

    Raises:
        MediaError: no video stream, corrupt data, or no frame decoded.
    """
    import av

    path = check_readable(path)
    frames, times = [], []
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        scale = min(1.0, max_side / max(width, height)) if width and height else 1.0
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                time = float(frame.pts * stream.time_base) - start
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


def decode_audio_track(path: str | Path) -> np.ndarray:
    """The audio track of a container (or any file FFmpeg reads), 16 kHz mono float32.

    Raises:
        MediaError: no audio stream or nothing decodable.
    """
    import av

    path = check_readable(path)
    chunks = []
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio track; MATER needs the voice (use a clip with sound)")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        try:
            for frame in container.decode(container.streams.audio[0]):
                chunks.extend(out.to_ndarray().ravel() for out in resampler.resample(frame))
        except av.error.FFmpegError as error:
            if not chunks:
                raise MediaError(f"{path}: audio cannot be decoded ({error})") from None
        chunks.extend(out.to_ndarray().ravel() for out in resampler.resample(None))
    if not chunks:
        raise MediaError(f"{path}: the audio track holds no samples")
    return np.concatenate(chunks).astype(np.float32)


def decode_audio(path: str | Path) -> np.ndarray:
    """16 kHz mono audio of any clip: TensorFlow / tensorflow-io for audio files, PyAV for containers.

    Some real RAVDESS wavs end in an odd-sized `_PMX` chunk that both
    TensorFlow readers reject ("Data too short"); FFmpeg reads them, so such a
    file falls back to PyAV (the same file always takes the same path).
    """
    path = check_readable(path)
    if is_video(path):
        return decode_audio_track(path)
    from mater_tf.media import tfio_audio

    try:
        return tfio_audio.decode_audio_file(str(path))
    except MediaError as tensorflow_error:
        try:
            waveform = decode_audio_track(path)
        except MediaError:
            raise tensorflow_error from None
        logging.getLogger(__name__).debug("%s: read by FFmpeg (TensorFlow's reader rejected it)", path)
        return waveform
