"""Opening a media container with PyAV, and what every reader takes from it: its moving
video streams and its time origin.

Both streams of a container are timed from one origin, the container's start
(the earliest start time of its audio and video streams): a frame's time is
its presentation time minus the origin, and the waveform's sample 0 is the
origin (`mater_tf.media.audio_track` aligns the audio to it). So a sound and a
frame that play together in a player land at the same time here.
"""

from __future__ import annotations

from mater_tf.media.errors import MediaError


def open_container(path):
    """The PyAV container of a file.

    Raises:
        MediaError: nothing FFmpeg can open, in FFmpeg's words.
    """
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        reason = getattr(error, "strerror", None) or error  # FFmpeg's words, without the path again
        raise MediaError(
            f"{path}: not readable media ({reason}); the file may be corrupt, truncated, or not audio or video"
        ) from None


def moving_video(container) -> list:
    """The video streams that are not a cover picture (an mp3's or m4a's album art is a
    one-frame video stream with the attached_pic disposition)."""
    import av

    return [
        stream
        for stream in container.streams.video
        if not stream.disposition & av.stream.Disposition.attached_pic
    ]


def container_origin(container) -> float:
    """The container's start in seconds: the earliest start time of its audio and video streams."""
    starts = [
        float(stream.start_time * stream.time_base)
        for stream in (*moving_video(container), *container.streams.audio)
        if stream.start_time is not None and stream.time_base is not None
    ]
    if starts:
        return min(starts)
    return container.start_time / 1e6 if container.start_time is not None else 0.0  # AV_TIME_BASE


def declared_length(container) -> float | None:
    """The length the container's header declares (container or longest stream), None when unknown."""
    if container.duration:
        return container.duration / 1e6  # AV_TIME_BASE
    lengths = [
        float(stream.duration * stream.time_base)
        for stream in container.streams
        if stream.duration and stream.time_base
    ]
    return max(lengths) if lengths else None
