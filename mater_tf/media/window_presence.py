"""The one rule for which windows of a clip are present: at least half of the window lies
inside the clip's audio. `Windowing.present` (prepare) and `mater_tf.media.stream` (predict)
both apply it, so the windows a stream yields are the clip's present windows."""

from __future__ import annotations

import numpy as np

# Sample counts from float seconds (0.5 * 3 * 16000 ...) are rounded, never floored; window
# ends compared with times allow this much.
SECONDS_TOLERANCE = 1e-9


def seconds_inside(duration, starts, window_seconds: float):
    """Seconds of each window starting at `starts` that lie inside a clip of `duration` seconds
    (0 to `window_seconds`); a scalar for a scalar start, an array for an array."""
    return np.clip(duration - starts, 0.0, window_seconds)


def is_present(inside, window_seconds: float):
    """Whether a window with `inside` seconds inside the clip counts as present (half or more)."""
    return 2 * inside >= window_seconds - SECONDS_TOLERANCE
