"""One person's face followed across frames: the track (`FaceTrack`) and the choice of one box
per frame among the detector's candidates (`follow_one_face`).

The first face followed is the largest one; every later frame takes the
detection that overlaps the last accepted box most. A frame with no
detection, or none overlapping the person followed, counts as "no face".
"""

from __future__ import annotations

import dataclasses

import numpy as np

MIN_TRACK_IOU = 0.2


@dataclasses.dataclass
class FaceTrack:
    """Per frame: the face box [x, y, w, h] in frame pixels, and whether one was found."""

    boxes: np.ndarray  # float32 [n, 4]
    found: np.ndarray  # bool [n]
    last: np.ndarray | None = None  # the last accepted box: where the next frames' track goes on
    detected: np.ndarray | None = None  # bool [n]: frames the whole detector ran on

    @property
    def found_rate(self) -> float:
        return float(self.found.mean()) if len(self.found) else 0.0


def iou(box, boxes) -> np.ndarray:
    """Intersection over union of one [x, y, w, h] box with many."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter
    return inter / np.maximum(union, 1e-6)


def follow_one_face(detections: list[list], min_iou: float = MIN_TRACK_IOU, last=None) -> FaceTrack:
    """Chooses one box per frame from each frame's candidate boxes (already filtered).

    Args:
        detections: per frame, a list of [x, y, w, h] candidates.
        last: the track's last box from earlier frames (`FaceTrack.last`), so
            that a clip read piece by piece is tracked as if read whole.

    Returns:
        The track: the largest face starts it, then the best-overlapping box
        of each frame, or "not found" where nothing overlaps enough.
    """
    boxes = np.zeros((len(detections), 4), np.float32)
    found = np.zeros(len(detections), bool)
    for index, candidates in enumerate(detections):
        if not candidates:
            continue
        candidates = np.asarray(candidates, np.float32)
        if last is None:
            choice = int(np.argmax(candidates[:, 2] * candidates[:, 3]))
        else:
            overlaps = iou(last, candidates)
            choice = int(np.argmax(overlaps))
            if overlaps[choice] < min_iou:
                continue
        boxes[index], found[index] = candidates[choice], True
        last = candidates[choice]
    return FaceTrack(boxes, found, last)
