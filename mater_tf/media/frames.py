"""Video frames as the readers give them: RGB uint8, downscaled to a longest side, with their times.

`scaled_size` is the one rule for the size frames are decoded at, so a clip's
frames are the same whether read whole (`MediaFile.decode_video`), with its
audio (`mater_tf.media.clip`) or as a stream (`mater_tf.media.stream`).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Video:
    """Decoded frames of a clip (possibly downscaled) and their times."""

    frames: np.ndarray  # uint8 [n, H, W, 3]
    times: np.ndarray  # float64 [n], seconds from the container's origin
    width: int  # original size
    height: int


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) of frames of `width` x `height` scaled down to a longest side of at most
    `max_side` pixels (never up; at least 2 pixels a side)."""
    scale = min(1.0, max_side / max(width, height)) if width and height else 1.0
    return max(2, round(width * scale)), max(2, round(height * scale))


def rgb_frame(frame, size: tuple[int, int]) -> np.ndarray:
    """A PyAV video frame as RGB uint8 [H, W, 3] of `size` (width, height)."""
    return frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()
