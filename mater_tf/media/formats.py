"""What the media front end reads: its sample rate and the file suffixes it knows.

Suffixes only choose a fast path: files named as audio files go to the TensorFlow graph
(`mater_tf.media.audio_graph`), and a folder's files so named are listed without opening them.
What a file is (media or not, moving pictures or not) is what FFmpeg finds in it
(`mater_tf.media.media_file`): an .m4a, a .wav holding mp3.
"""

from __future__ import annotations

import functools
from pathlib import Path

SAMPLE_RATE = 16000
VIDEO_SUFFIXES = (".mp4", ".flv", ".avi", ".mov", ".mkv", ".webm", ".m4v")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg")


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


def named_audio_file(path: str | Path) -> bool:
    """Whether `decode_audio` tries TensorFlow's readers first (the file is named as an audio file)."""
    return Path(path).suffix.lower() in AUDIO_SUFFIXES
