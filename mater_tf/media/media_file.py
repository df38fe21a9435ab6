"""A media file probed once (`MediaFile`): its streams, origin, declared length, frame size
and rates, and its audio track and frames decoded from it.

A clip's path is probed once: `MediaFile.probe` opens the file with FFmpeg
(PyAV), reads what its header says and closes it; the probe is kept for that
version of the file (path, size, modification time), so listing a corpus,
choosing a clip's reader and checking it for truncation share it. Each
decoding then opens the file once more and reads it through.

Everything comes out as 16 kHz mono float32 audio in [-1, 1] (channels
averaged) and RGB uint8 frames with their presentation times in seconds, both
timed from the container's origin (`mater_tf.media.containers`).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from mater_tf.media.audio_track import AudioTrack
from mater_tf.media.containers import container_origin, declared_length, moving_video, open_container
from mater_tf.media.errors import MediaError
from mater_tf.media.frames import Video, rgb_frame, scaled_size


def check_readable(path: str | Path) -> Path:
    """The path, when it names a non-empty file (what it holds is FFmpeg's to judge)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file")
    return path


@dataclasses.dataclass(frozen=True)
class Streams:
    """What FFmpeg finds in a file: an audio stream, a video stream of moving pictures."""

    audio: bool
    video: bool


@dataclasses.dataclass(frozen=True)
class MediaFile:
    """What FFmpeg finds in a file, read once (`probe`), and its decoders.

    Attributes:
        path: the file.
        streams: whether it holds an audio stream and moving pictures.
        origin: the container's start in seconds (the time every reader counts from).
        declared_seconds: the length its header declares; None when unknown.
        width, height: the video's size in pixels (None without moving pictures).
        sample_rate: the audio stream's rate in Hz (None without audio).
        frame_rate: the video's average frame rate (None when unknown).
    """

    path: Path
    streams: Streams
    origin: float
    declared_seconds: float | None
    width: int | None = None
    height: int | None = None
    sample_rate: int | None = None
    frame_rate: float | None = None

    @classmethod
    def probe(cls, path: str | Path) -> MediaFile:
        """The file probed (once per version of the file).

        Raises:
            MediaError: missing, empty, or nothing FFmpeg can open.
        """
        path = check_readable(path)
        stat = path.stat()
        return _probe(str(path), stat.st_size, stat.st_mtime_ns)

    def decode_audio_track(self) -> np.ndarray:
        """The audio track, 16 kHz mono float32, sample 0 at the origin (`mater_tf.media.audio_track`).

        Raises:
            MediaError: no audio stream or nothing decodable.
        """
        import av

        if not self.streams.audio:
            raise MediaError(
                f"{self.path}: has no audio track; MATER needs the voice (use a clip with sound)"
            )
        with open_container(self.path) as container:
            track = AudioTrack(self.path, self.origin)
            try:
                for frame in container.decode(container.streams.audio[0]):
                    track.add(frame)
            except av.error.FFmpegError as error:
                track.failed(error)
            return track.waveform()

    def decode_video(self, max_side: int = 640, until_seconds: float | None = None) -> Video:
        """All frames (RGB, longest side at most `max_side`) shown before `until_seconds`.

        Raises:
            MediaError: no video stream, corrupt data, or no frame decoded.
        """
        import av

        if not self.streams.video:
            raise MediaError(f"{self.path}: has no video stream")
        size = scaled_size(self.width, self.height, max_side)
        frames, times = [], []
        with open_container(self.path) as container:
            stream = moving_video(container)[0]
            try:
                for frame in container.decode(stream):
                    if frame.pts is None:
                        continue
                    time = float(frame.pts * stream.time_base) - self.origin
                    if until_seconds is not None and time >= until_seconds:
                        break
                    frames.append(rgb_frame(frame, size))
                    times.append(time)
            except av.error.FFmpegError as error:
                if not frames:
                    raise MediaError(f"{self.path}: video cannot be decoded ({error})") from None
        if not frames:
            raise MediaError(f"{self.path}: no video frame could be decoded")
        return Video(np.stack(frames), np.asarray(times), self.width, self.height)

    def decode_clip(
        self, max_side: int = 640, until_seconds: float | None = None
    ) -> tuple[np.ndarray, Video | None]:
        """(audio track, frames shown before `until_seconds` or None without video) in one pass
        over the container (`mater_tf.media.clip`)."""
        from mater_tf.media.clip import decode_clip

        return decode_clip(self, max_side, until_seconds)


@functools.lru_cache(maxsize=4096)
def _probe(path: str, size: int, modified: int) -> MediaFile:
    with open_container(path) as container:
        video = moving_video(container)
        audio = container.streams.audio
        width = height = frame_rate = None
        if video:
            width, height = video[0].codec_context.width, video[0].codec_context.height
            frame_rate = float(video[0].average_rate) if video[0].average_rate else None
        return MediaFile(
            path=Path(path),
            streams=Streams(bool(audio), bool(video)),
            origin=container_origin(container),
            declared_seconds=declared_length(container),
            width=width,
            height=height,
            sample_rate=audio[0].codec_context.sample_rate if audio else None,
            frame_rate=frame_rate,
        )


def probe(path: str | Path) -> Streams:
    """The streams FFmpeg finds in a file (`MediaFile.probe`).

    Raises:
        MediaError: missing, empty, or nothing FFmpeg can open.
    """
    return MediaFile.probe(path).streams


def is_video(path: str | Path) -> bool:
    """Whether FFmpeg finds moving pictures in the file (not cover art; False where it cannot open it)."""
    try:
        return probe(path).video
    except MediaError:
        return False


def has_video_stream(path: str | Path) -> bool:
    """Whether a container holds moving pictures (an .mp4 may carry audio only; cover art is not).

    Raises:
        MediaError: a file FFmpeg cannot open.
    """
    return probe(path).video


def decode_audio_track(path: str | Path) -> np.ndarray:
    """The audio track of a container (or any file FFmpeg reads): `MediaFile.decode_audio_track`."""
    return MediaFile.probe(path).decode_audio_track()


def decode_video(path: str | Path, max_side: int = 640, until_seconds: float | None = None) -> Video:
    """A file's frames: `MediaFile.decode_video`."""
    return MediaFile.probe(path).decode_video(max_side, until_seconds)


def declared_seconds(path: str | Path) -> float | None:
    """The length the file's header declares (container or longest stream), None when unknown
    or when FFmpeg cannot open the file.

    Compared with what decodes, it tells a truncated or corrupt file from a short one.
    """
    try:
        return MediaFile.probe(path).declared_seconds
    except MediaError:
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
