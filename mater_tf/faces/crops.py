"""Face crops: squares around the tracked boxes, slightly enlarged, resized with
`tf.image.crop_and_resize`."""

from __future__ import annotations

import numpy as np


def crop_boxes(boxes: np.ndarray, height: int, width: int, margin: float = 0.15) -> np.ndarray:
    """The squares around [x, y, w, h] boxes, enlarged by `margin`, as `tf.image.crop_and_resize`
    takes them: [y1, x1, y2, x2] in frame units (0..1 from the first to the last pixel)."""
    centre_x = boxes[:, 0] + boxes[:, 2] / 2
    centre_y = boxes[:, 1] + boxes[:, 3] / 2
    half = np.maximum(boxes[:, 2], boxes[:, 3]) * (1 + margin) / 2
    return np.stack(
        [
            (centre_y - half) / (height - 1),
            (centre_x - half) / (width - 1),
            (centre_y + half) / (height - 1),
            (centre_x + half) / (width - 1),
        ],
        axis=1,
    ).astype(np.float32)


def crop_faces(frames: np.ndarray, boxes: np.ndarray, size: int = 96, margin: float = 0.15) -> np.ndarray:
    """Square crops around [x, y, w, h] boxes, enlarged by `margin`, as uint8 [n, size, size, 3]."""
    import tensorflow as tf

    if len(frames) == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    normalised = crop_boxes(boxes, *frames.shape[1:3], margin=margin)
    # Straight from the uint8 frames: crop_and_resize reads any pixel type and interpolates in
    # float32, the same numbers as from a float32 copy of every frame, without making that copy.
    crops = tf.image.crop_and_resize(frames, normalised, tf.range(len(frames)), (size, size))
    return tf.cast(tf.clip_by_value(tf.round(crops), 0, 255), tf.uint8).numpy()
