"""An audio track decoded to 16 kHz mono and aligned to its container's origin.

Sample 0 of a waveform is the container's origin (`mater_tf.media.containers`):
a track that starts later than the origin is preceded by silence for the gap;
samples before the origin are dropped (`origin_offset`, the one rule, used by
the whole-file readers and the stream alike). A gap in the middle of an audio
track is not filled in.
"""

from __future__ import annotations

import numpy as np

from mater_tf.media.errors import MediaError
from mater_tf.media.formats import SAMPLE_RATE


def audio_resampler():
    """PyAV's resampler to planar float at 16 kHz in the track's own layout; the channels are
    averaged by `mono`, as for audio files (FFmpeg's own downmix weights them: a stereo tone
    came out 1.41x louder)."""
    import av

    return av.AudioResampler(format="fltp", rate=SAMPLE_RATE)


def mono(frame) -> np.ndarray:
    """The mean of a planar audio frame's channels."""
    return frame.to_ndarray().reshape(len(frame.layout.channels), -1).mean(axis=0)


def origin_offset(first_frame, origin: float) -> int:
    """Samples from the origin to a track's first frame: silence to put before the track when
    positive, the track's samples to drop when negative."""
    start = first_frame.time if first_frame.time is not None else origin
    return round((start - origin) * SAMPLE_RATE)


class AudioTrack:
    """An audio track decoded frame by frame into 16 kHz mono chunks (`add`), then one
    waveform whose sample 0 is the container's origin (`waveform`)."""

    def __init__(self, path, origin: float):
        self.path, self.origin = path, origin
        self.chunks, self.offset = [], None
        self.resampler = audio_resampler()

    def add(self, frame) -> None:
        if self.offset is None:
            self.offset = origin_offset(frame, self.origin)
        self.chunks.extend(mono(out) for out in self.resampler.resample(frame))

    def failed(self, error) -> None:
        """A decoding error ends the track where it is; before any sample it is the clip's end."""
        if not self.chunks:
            raise MediaError(f"{self.path}: audio cannot be decoded ({error})") from None

    def waveform(self) -> np.ndarray:
        self.chunks.extend(mono(out) for out in self.resampler.resample(None))  # flush
        if not self.chunks:
            raise MediaError(f"{self.path}: the audio track holds no samples")
        waveform = np.concatenate(self.chunks).astype(np.float32)
        if self.offset > 0:
            return np.concatenate([np.zeros(self.offset, np.float32), waveform])
        return waveform[-self.offset :]
