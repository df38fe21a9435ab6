"""A face-expression classifier: the FER2013 mini-Xception's seven classes, named as the voice model names them.

The classifier is a Keras model that takes a face crop (64 x 64 grey, scaled to
[-1, 1], the FER2013 convention) and gives the probabilities of FER2013's seven
classes in its own order: angry, disgust, fear, happy, sad, surprise, neutral.

Those classes are six of RAVDESS's eight plus neutral, under other spellings;
`FACE_TO_VOICE` writes the mapping out. RAVDESS's "calm" has no face class
(FER2013 has none), so a face never says calm. Nothing here combines the face
with the voice: no fusion of the two has been measured on labelled data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mater_tf.errors import UserError
from mater_tf.features.embedders import FaceEmbedder, file_checksum, load_keras_model

# The classifier's outputs, in its own order (FER2013's class ids 0-6).
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# Each FER2013 class as the RAVDESS voice model names it (the same emotion). "calm" has no face class.
FACE_TO_VOICE = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprised",
    "neutral": "neutral",
}
# The classifier's outputs named as the voice names them, in the classifier's order.
FACE_LABELS = tuple(FACE_TO_VOICE[name] for name in FER2013_CLASSES)


def on_voice_labels(probabilities, voice_labels) -> list[float]:
    """A face's seven probabilities placed on the voice's labels (a voice label with no face
    class, calm, gets 0), for drawing both in one set of colours."""
    placed = dict(zip(FACE_LABELS, np.asarray(probabilities, np.float64).tolist()))
    return [placed.get(label, 0.0) for label in voice_labels]


class ExpressionClassifier:
    """`classify(crops uint8 [n, H, W, 3]) -> float32 [n, 7]`: FER2013 class probabilities.

    Args:
        path: the Keras model file (e.g. the FER2013 mini-Xception .hdf5).
        sha256: the file's expected checksum; given, a file that differs is refused.
        name: what results call it.
    """

    def __init__(self, path: str | Path, sha256: str | None = None, name: str = ""):

        path = Path(path)
        if not path.is_file():
            raise UserError(f"face-expression model '{path}' not found; give the path of the file")
        checksum = file_checksum(path)
        if sha256 and checksum != sha256:
            raise UserError(
                f"{path}: its checksum (sha256 {checksum[:12]}...) is not the expected {sha256[:12]}...: "
                "the file is damaged or another one; replace it with the original"
            )
        model = load_keras_model(path, "Keras model", "replace it with the original")
        if tuple(model.output_shape[1:]) != (len(FER2013_CLASSES),):
            raise UserError(
                f"{path}: gives {model.output_shape[1:]} outputs, not the {len(FER2013_CLASSES)} FER2013 classes"
            )
        self.path = path
        self.sha256 = checksum
        self.name = name or path.stem
        self.input_size = int(model.input_shape[1])
        # The classifier's own softmax output is the "embedding": grey, [-1, 1], as FER2013 models take it.
        self._model = FaceEmbedder(
            model, self.name, checksum, grey=model.input_shape[-1] == 1, scale="symmetric"
        )

    def classify(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, len(FER2013_CLASSES)), np.float32)
        return self._model.embed(crops)
