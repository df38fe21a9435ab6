"""Faces: MTCNN detection on downscaled frames, one person tracked across frames, crops.

Detection runs on frames whose longest side is `detect_side` pixels (MTCNN's
cost grows with the pixel count, and its default minimum face size of 20 px
still finds a talking head at that size), in batches. The first face followed
is the largest one; every later frame takes the detection that overlaps the
last accepted box most. A frame with no detection, or none overlapping the
person followed, counts as "no face" (never a stale box). Crops are square
around the box, slightly enlarged, resized with `tf.image.crop_and_resize`.
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


class FaceTracker:
    """MTCNN over a clip's frames.

    Args:
        detect_side: longest side of the frames given to MTCNN, in pixels.
        min_confidence: detections below this are ignored.
        batch_size: frames per MTCNN call.
    """

    def __init__(self, detect_side: int = 320, min_confidence: float = 0.9, batch_size: int = 16):
        try:
            from mtcnn import MTCNN
        except ImportError as error:  # pragma: no cover - depends on the install
            raise ImportError("face detection needs mtcnn: pip install 'mater-tf[media]'") from error
        self.detector = MTCNN(stages="face_and_landmarks_detection")
        self.detect_side = detect_side
        self.min_confidence = min_confidence
        self.batch_size = batch_size

    def detect(self, frames: np.ndarray) -> list[list]:
        """Candidate boxes [x, y, w, h] per frame, in the frames' own pixels."""
        import tensorflow as tf

        height, width = frames.shape[1:3]
        scale = min(1.0, self.detect_side / max(height, width))
        small = frames
        if scale < 1.0:
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            small = tf.cast(tf.image.resize(frames, size, antialias=True), tf.uint8).numpy()
        results = []
        for start in range(0, len(small), self.batch_size):
            batch = list(small[start : start + self.batch_size])
            found = self.detector.detect_faces(batch)
            if len(batch) == 1 and (not found or isinstance(found[0], dict)):
                found = [found]
            for faces in found:
                results.append(
                    [
                        [value / scale for value in face["box"]]
                        for face in faces
                        if face["confidence"] >= self.min_confidence
                    ]
                )
        return results

    def track(self, frames: np.ndarray, last=None) -> FaceTrack:
        """The face followed through `frames`, going on from `last` (a previous piece's `FaceTrack.last`)."""
        if len(frames) == 0:
            return FaceTrack(np.zeros((0, 4), np.float32), np.zeros(0, bool), last)
        return follow_one_face(self.detect(frames), last=last)


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
