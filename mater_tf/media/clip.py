"""A video clip's audio track and frames in one pass over the container.

`decode_clip` gives what `MediaFile.decode_audio_track` and `decode_video`
give for the same file (the same 16 kHz resampler fed the same audio frames,
the same origin, frames scaled alike), but demuxes the file once: prepare
decoded every video twice before, once for its voice and once for its face.
"""

from __future__ import annotations

import numpy as np

from mater_tf.media.audio_track import AudioTrack
from mater_tf.media.containers import moving_video, open_container
from mater_tf.media.errors import MediaError
from mater_tf.media.frames import Video, rgb_frame, scaled_size


def decode_clip(
    media, max_side: int = 640, until_seconds: float | None = None
) -> tuple[np.ndarray, Video | None]:
    """(16 kHz mono waveform, frames shown before `until_seconds`) of a probed file
    (`mater_tf.media.media_file.MediaFile`), read once.

    The video is None when the container has no video stream (an mp4 with
    sound only). Raises as `MediaFile.decode_audio_track` and `decode_video` do.
    """
    import av

    path, origin = media.path, media.origin
    if not media.streams.audio:
        raise MediaError(f"{path}: has no audio track; MATER needs the voice (use a clip with sound)")
    frames, times = [], []
    with open_container(path) as container:
        audio_stream = container.streams.audio[0]
        video_stream = (moving_video(container) or [None])[0]
        track = AudioTrack(path, origin)
        if video_stream is not None:
            size = scaled_size(media.width, media.height, max_side)
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
                        frames.append(rgb_frame(frame, size))
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
    return waveform, Video(np.stack(frames), np.asarray(times), media.width, media.height)
