"""The windows of a clip (paper section 2.1): T non-overlapping windows of d seconds, which
log-mel frames each takes, and which are present."""

from __future__ import annotations

import dataclasses

import numpy as np

from mater_tf.features.log_mel import HOP_SAMPLES, WINDOW_SAMPLES
from mater_tf.media.formats import SAMPLE_RATE
from mater_tf.media.window_presence import is_present, seconds_inside


@dataclasses.dataclass(frozen=True)
class Windowing:
    """T windows of d seconds from the clip start."""

    num_windows: int
    window_seconds: float

    @property
    def window_samples(self) -> int:
        return round(self.window_seconds * SAMPLE_RATE)

    @property
    def frames_per_window(self) -> int:
        """Log-mel frames whose whole analysis window fits in one window (48 for 0.5 s)."""
        return (self.window_samples - WINDOW_SAMPLES) // HOP_SAMPLES + 1

    def first_frame(self, window: int) -> int:
        """Index, in the whole clip's log-mel, of window `window`'s first frame."""
        return round(window * self.window_seconds * SAMPLE_RATE / HOP_SAMPLES)

    def bounds(self, window: int) -> tuple[float, float]:
        return window * self.window_seconds, (window + 1) * self.window_seconds

    def present(self, duration: float, face_frames_found: np.ndarray | None = None) -> np.ndarray:
        """int64 [T]: 1 where window t counts as present, for audio and face alike
        (`mater_tf.media.window_presence`: at least half of it inside the clip).

        Args:
            duration: the clip's length in seconds.
            face_frames_found: [T] frames of each window in which the face was
                found; given, a window also needs at least one.
        """
        starts = np.arange(self.num_windows) * self.window_seconds
        present = is_present(seconds_inside(duration, starts, self.window_seconds), self.window_seconds)
        if face_frames_found is not None:
            present &= np.asarray(face_frames_found) > 0
        return present.astype(np.int64)
