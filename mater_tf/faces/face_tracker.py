"""The face tracker: MTCNN detection on downscaled frames, one person tracked across frames.

Detection runs on frames whose longest side is `detect_side` pixels (MTCNN's
cost grows with the pixel count, and its default minimum face size of 20 px
still finds a talking head at that size), in batches, with MTCNN's three
networks compiled (`tf.function`: the same numbers, without Keras' per-layer
eager overhead).

Detect every k-th frame (`detect_every`): within each segment of frames (a
window of the clip: segments are never bridged, so a window's boxes do not
depend on the next window's frames and a stream is tracked as a file is), the
detector runs on the first frame, every k-th frame after it and the last one.
A frame between two detection frames takes the box linearly interpolated
between them when the face is not lost; it is *lost*, and the frame is run
through the whole detector instead, when

* the two detection frames do not hold the same face: the face was not found
  in one of them, or the two boxes followed overlap by less than
  `MIN_BRIDGE_IOU` (it moved too fast to interpolate), or
* MTCNN's last network (O-Net), given the interpolated box, scores it below
  the detector's own confidence threshold (the face turned away, was covered
  or left between the two detections).

So a box is always a detection or an interpolation that the detector's own
face classifier confirms on that frame, never a stale box. `detect_every=1`
detects in every frame (the boxes of the plain detector).

The first face followed is the largest one; every later frame takes the
detection that overlaps the last accepted box most. A frame with no
detection, or none overlapping the person followed, counts as "no face".
Crops are cut around the boxes by `mater_tf.faces.crops`.
"""

from __future__ import annotations

import threading

import numpy as np

from mater_tf.faces.detection_schedule import bridge, detection_frames
from mater_tf.faces.face_track import FaceTrack, follow_one_face

# Measured on the CREMA-D sample (benchmarks/bench_prepare.py): detection in every 5th frame of
# each window at 320 px kept the face in 100% of the frames, window embeddings at cosine 0.991 on
# average (0.972 at least) to detection in every frame, for half the CPU time of prepare.
DETECT_EVERY = 5
DETECT_SIDE = 320
ONET_SIZE = 48


class FaceTracker:
    """MTCNN over a clip's frames.

    Args:
        detect_side: longest side of the frames given to MTCNN, in pixels.
        min_confidence: detections (and O-Net's score of an interpolated box)
            below this are ignored.
        batch_size: frames per MTCNN call.
        detect_every: k: detect in every k-th frame and interpolate between
            (see the module doc); 1 detects in every frame.
    """

    def __init__(
        self,
        detect_side: int = DETECT_SIDE,
        min_confidence: float = 0.9,
        batch_size: int = 16,
        detect_every: int = DETECT_EVERY,
    ):
        import importlib.util

        if importlib.util.find_spec("mtcnn") is None:  # pragma: no cover - depends on the install
            raise ImportError("face detection needs mtcnn: pip install 'mater-tf[media]'")
        self._detector = None  # built when first needed: a clip without frames never loads it
        self._building = threading.Lock()  # prepare tracks several clips at once in threads
        self.detect_side = detect_side
        self.min_confidence = min_confidence
        self.batch_size = batch_size
        self.detect_every = detect_every

    @property
    def detector(self):
        """MTCNN, its three networks compiled."""
        with self._building:
            if self._detector is None:
                import tensorflow as tf
                from mtcnn import MTCNN

                detector = MTCNN(stages="face_and_landmarks_detection")
                # Each network as one graph: eager Keras spent most of MTCNN's time in per-layer
                # Python (measured 1.75x faster at 320 px, identical boxes). The stages call
                # `_model`. One signature for every image size and batch: traced once (tracking a
                # clip's first five windows took 0.8 instead of 1.2 CPU seconds).
                images = tf.TensorSpec([None, None, None, 3], tf.float32)
                for stage in detector.stages:
                    stage._model = tf.function(stage.model, input_signature=[images])
                self._detector = detector
        return self._detector

    def detect(self, frames: np.ndarray) -> list[list]:
        """Candidate boxes [x, y, w, h] per frame, in the frames' own pixels."""
        import tensorflow as tf

        if len(frames) == 0:
            return []
        height, width = frames.shape[1:3]
        scale = min(1.0, self.detect_side / max(height, width))
        results = []
        for start in range(0, len(frames), self.batch_size):
            batch = frames[start : start + self.batch_size]
            if scale < 1.0:
                size = (max(1, round(height * scale)), max(1, round(width * scale)))
                batch = tf.cast(tf.image.resize(batch, size, antialias=True), tf.uint8).numpy()
            found = self.detector.detect_faces(list(batch))
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

    def face_confidence(self, frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """O-Net's face probability for one [x, y, w, h] box per frame (squared, as MTCNN feeds it)."""
        import tensorflow as tf

        if len(frames) == 0:
            return np.zeros(0, np.float32)
        side = np.maximum(boxes[:, 2], boxes[:, 3])
        x1 = boxes[:, 0] + (boxes[:, 2] - side) / 2
        y1 = boxes[:, 1] + (boxes[:, 3] - side) / 2
        height, width = frames.shape[1:3]
        # MTCNN's own patch convention (mtcnn.utils.images.extract_patches): pixel / size.
        normalised = np.stack([y1 / height, x1 / width, (y1 + side) / height, (x1 + side) / width], 1)
        patches = tf.image.crop_and_resize(
            frames, normalised.astype(np.float32), tf.range(len(frames)), (ONET_SIZE, ONET_SIZE)
        )
        onet = self.detector.stages[-1]._model
        _, _, scores = onet((patches - 127.5) / 128)  # MTCNN's normalisation, on the patch
        return np.asarray(scores)[:, -1]

    def track(self, frames: np.ndarray, last=None, segments=None) -> FaceTrack:
        """The face followed through `frames`, going on from `last` (a previous piece's `FaceTrack.last`).

        Args:
            frames: uint8 [n, H, W, 3].
            last: the previous piece's last box, or None at the clip start.
            segments: [n] segment (window) of each frame; None: one segment.
        """
        count = len(frames)
        if count == 0:
            return FaceTrack(np.zeros((0, 4), np.float32), np.zeros(0, bool), last, np.zeros(0, bool))
        keys = detection_frames(count, self.detect_every, segments)
        candidates: list = [None] * count
        for index, boxes in zip(keys, self.detect(frames[keys])):
            candidates[index] = boxes
        bridged = np.zeros(count, bool)
        if len(keys) < count:
            key_track = follow_one_face([candidates[index] for index in keys], last=last)
            boxes, bridged = bridge(keys, key_track, count)
            if bridged.any():
                confirmed = self.face_confidence(frames[bridged], boxes[bridged]) >= self.min_confidence
                bridged[np.flatnonzero(bridged)[~confirmed]] = False
            lost = [index for index in range(count) if candidates[index] is None and not bridged[index]]
            for index, found in zip(lost, self.detect(frames[lost])):
                candidates[index] = found
            for index in np.flatnonzero(bridged):
                candidates[index] = [boxes[index]]
        track = follow_one_face(candidates, last=last)
        track.detected = ~bridged
        return track
