"""A video clip's audio track and frames in one pass over the container.

`decode_clip` gives what `decode_audio_track` and `decode_video` give for the
same file (the same 16 kHz resampler fed the same audio frames, the same
origin, frames scaled alike), but demuxes the file once: prepare decoded
every video twice before, once for its voice and once for its face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mater_tf.media import (
    MediaError,
    Video,
    _AudioTrack,
    _moving_video,
    _open,
    _origin,
    check_readable,
)


def decode_clip(
    path: str | Path, max_side: int = 640, until_seconds: float | None = None
) -> tuple[np.ndarray, Video | None]:
    """(16 kHz mono waveform, frames shown before `until_seconds`) of a container, read once.

    The video is None when the container has no video stream (an mp4 with
    sound only). Raises as `decode_audio_track` and `decode_video` do.
    """
    import av

    path = check_readable(path)
    frames, times = [], []
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio track; MATER needs the voice (use a clip with sound)")
        audio_stream = container.streams.audio[0]
        video_stream = (_moving_video(container) or [None])[0]
        origin = _origin(container)
        track = _AudioTrack(path, origin)
        if video_stream is not None:
            width, height = video_stream.codec_context.width, video_stream.codec_context.height
            scale = min(1.0, max_side / max(width, height)) if width and height else 1.0
            size = (max(2, round(width * scale)), max(2, round(height * scale)))
        video_done, video_error = video_stream is None, None
        streams = [audio_stream] + ([video_stream] if video_stream is not None else [])
        try:
            for packet in container.demux(*streams):
                if packet.stream.type == "video":
                    if video_done:
                        continue  # past `until_seconds`: the frames are not needed
                    try:
                        decoded = packet.decode()
                    except av.error.FFmpegError as error:
                        video_done, video_error = True, error  # as decode_video: keep the frames so far
                        continue
                    for frame in decoded:
                        if frame.pts is None:
                            continue
                        time = float(frame.pts * video_stream.time_base) - origin
                        if until_seconds is not None and time >= until_seconds:
                            video_done = True
                            break
                        frames.append(
                            frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()
                        )
                        times.append(time)
                    continue
                for frame in packet.decode():
                    track.add(frame)
        except av.error.FFmpegError as error:
            track.failed(error)
        # demux ends with an empty packet per stream, which flushed both decoders above.
        waveform = track.waveform()
    if video_stream is None:
        return waveform, None
    if not frames:
        reason = (
            f"video cannot be decoded ({video_error})" if video_error else "no video frame could be decoded"
        )
        raise MediaError(f"{path}: {reason}")
    return waveform, Video(np.stack(frames), np.asarray(times), width, height)
