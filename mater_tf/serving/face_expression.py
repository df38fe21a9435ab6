"""The face's expression, window by window, shown beside the voice and never fused with it.

Where a video shows a face, every window's frames are tracked with the same
MTCNN tracker as prepare and predict use (`mater_tf.faces`, one window at a
time, so a file and a live stream give the same numbers), each face crop is
classified by a face-expression classifier (`mater_tf.features.expression`),
and the window's face expression is the mean of its frames' probabilities
(frames with a face only). The clip's is the mean over the windows that hold
a face.

The voice and the face are reported side by side: no fusion of the two has
been measured on labelled data, so nothing combines them and the clip's
emotion stays the voice model's.
"""

from __future__ import annotations

import numpy as np

from mater_tf.faces import DETECT_EVERY, DETECT_SIDE
from mater_tf.features.expression import FACE_LABELS, FACE_TO_VOICE, FER2013_CLASSES

NOT_FUSED = (
    "none: the face is shown beside the voice; no fusion of the two has been measured on labelled data, "
    "so the clip's emotion is the voice model's alone"
)
RULE = (
    "a window's face expression = the mean of the classifier's probabilities over the window's frames "
    "with a face; the clip's = the mean over the windows with a face"
)


class FaceExpressionChannel:
    """Classifies the tracked face of consecutive stream windows (`mater_tf.media.stream.MediaWindow`s).

    Args:
        classifier: an `ExpressionClassifier`.
        model_name: the built-in's name, for the results.
        detect_every / detect_side: MTCNN's settings (`mater_tf.faces`).
    """

    def __init__(self, classifier, model_name: str, detect_every=DETECT_EVERY, detect_side=DETECT_SIDE):
        from mater_tf.faces import FaceTracker

        self.classifier = classifier
        self.model_name = model_name
        self.tracker = FaceTracker(detect_side=detect_side, detect_every=detect_every)

    def classify_windows(self, windows, track_last=None) -> tuple[list, np.ndarray, object]:
        """(per window: 7 probabilities in `FACE_LABELS` order or None where no face was found,
        frames with a face per window, the track's last box for the next call)."""
        from mater_tf.faces import crop_faces

        rows, found = [], np.zeros(len(windows), np.int64)
        for row, window in enumerate(windows):
            if not len(window.frame_times):
                rows.append(None)
                continue
            track = self.tracker.track(window.frames, last=track_last)
            track_last = track.last
            found[row] = int(track.found.sum())
            if not found[row]:
                rows.append(None)
                continue
            crops = crop_faces(
                window.frames[track.found], track.boxes[track.found], size=self.classifier.input_size
            )
            rows.append(
                np.asarray(self.classifier.classify(crops), np.float64).mean(axis=0).round(4).tolist()
            )
        return rows, found, track_last

    def summary(self, rows: list, voice_labels) -> dict:
        """The clip's face expression from its windows' (the module doc's rule)."""
        present = [row for row in rows if row is not None]
        mean = np.mean(present, axis=0) if present else None
        return {
            "model": self.model_name,
            "labels": list(FACE_LABELS),
            "classifier_classes": list(FER2013_CLASSES),
            "mapping": dict(FACE_TO_VOICE),  # classifier class -> the voice's label
            "voice_labels_without_face_class": [label for label in voice_labels if label not in FACE_LABELS],
            "emotion": FACE_LABELS[int(np.argmax(mean))] if present else None,
            "probabilities": dict(zip(FACE_LABELS, mean.round(4).tolist())) if present else None,
            "windows_with_face": len(present),
            "rule": RULE,
            "fusion": NOT_FUSED,
        }
