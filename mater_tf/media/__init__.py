"""Decoding media: video frames and audio tracks (PyAV), plain audio files (TensorFlow ops).

Everything comes out as 16 kHz mono float32 audio in [-1, 1] (channels
averaged) and RGB uint8 frames with their presentation times in seconds, both
timed from the container's origin (`containers`). A clip is probed once
(`MediaFile`) and decoded from that probe (`media_file`, `clip`, `stream`);
`decode_audio` picks the reader of any clip's audio (`audio_decoding`).
"""

from mater_tf.media.audio_decoding import decode_audio
from mater_tf.media.errors import MediaError, op_error_reason
from mater_tf.media.formats import (
    AUDIO_SUFFIXES,
    SAMPLE_RATE,
    VIDEO_SUFFIXES,
    ffmpeg_suffixes,
    named_audio_file,
)
from mater_tf.media.frames import Video
from mater_tf.media.media_file import (
    MediaFile,
    Streams,
    check_not_truncated,
    check_readable,
    declared_seconds,
    decode_audio_track,
    decode_video,
    has_video_stream,
    is_video,
    probe,
)
from mater_tf.media.requirements import MEDIA_EXTRA, require_media_packages

__all__ = [
    "AUDIO_SUFFIXES",
    "MEDIA_EXTRA",
    "SAMPLE_RATE",
    "VIDEO_SUFFIXES",
    "MediaError",
    "MediaFile",
    "Streams",
    "Video",
    "check_not_truncated",
    "check_readable",
    "declared_seconds",
    "decode_audio",
    "decode_audio_track",
    "decode_video",
    "ffmpeg_suffixes",
    "has_video_stream",
    "is_video",
    "named_audio_file",
    "op_error_reason",
    "probe",
    "require_media_packages",
]
