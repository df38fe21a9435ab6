"""Which frames MTCNN runs on (`detection_frames`) and the boxes interpolated between them
(`bridge`); `mater_tf.faces.face_tracker` says when an interpolated box is kept."""

from __future__ import annotations

import numpy as np

from mater_tf.faces.face_track import FaceTrack, iou

# Two detections this far apart (IoU) are the same face standing nearly still: frames between
# them may be interpolated. A face that moved more is detected in every frame between.
MIN_BRIDGE_IOU = 0.5


def detection_frames(num_frames: int, every: int, segments=None) -> np.ndarray:
    """Indices of the frames the detector runs on: in each segment its first frame, every
    `every`-th frame after it, and its last frame.

    Args:
        num_frames: frames in all.
        every: k (1: every frame).
        segments: [num_frames] segment label of each frame (e.g. its window), frames of one
            segment consecutive; None: one segment.
    """
    if num_frames == 0:
        return np.zeros(0, np.int64)
    labels = np.zeros(num_frames, np.int64) if segments is None else np.asarray(segments)
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    stops = np.r_[starts[1:], num_frames]
    keys = [np.r_[np.arange(start, stop, every), stop - 1] for start, stop in zip(starts, stops)]
    return np.unique(np.concatenate(keys))


def bridge(keys: np.ndarray, key_track: FaceTrack, num_frames: int, min_iou: float = MIN_BRIDGE_IOU):
    """Boxes linearly interpolated for the frames between detection frames that hold the same face.

    Args:
        keys: the detection frames' indices (sorted; `detection_frames`).
        key_track: the face followed through the detection frames alone.
        num_frames: frames in all.
        min_iou: the two detections must overlap at least this much.

    Returns:
        (boxes float32 [num_frames, 4], bridged bool [num_frames]): bridged marks the frames
        between two detection frames that got an interpolated box; the other frames between
        detection frames lost the face (see the module doc) and need detecting.
    """
    boxes = np.zeros((num_frames, 4), np.float32)
    bridged = np.zeros(num_frames, bool)
    for (first, second), (found_first, found_second), (box_first, box_second) in zip(
        zip(keys[:-1], keys[1:]),
        zip(key_track.found[:-1], key_track.found[1:]),
        zip(key_track.boxes[:-1], key_track.boxes[1:]),
    ):
        if second - first < 2 or not (found_first and found_second):
            continue
        if iou(box_first, box_second[None])[0] < min_iou:
            continue
        between = np.arange(first + 1, second)
        share = ((between - first) / (second - first))[:, None]
        boxes[between] = (1 - share) * box_first + share * box_second
        bridged[between] = True
    return boxes, bridged
