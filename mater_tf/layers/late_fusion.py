"""Late fusion of the modalities' logits (paper eq. 3)."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class LateFusion(keras.layers.Layer):
    """Averages the logits of the modalities present in a clip (paper eq. 3).

    With every modality present this is exactly the paper's mean. A modality
    with no valid window in a clip (no face found anywhere, say) is left out
    of that clip's mean instead of pulling it towards its bias.
    """

    def call(self, logits, valids):
        total, count = 0.0, 0.0
        for modality_logits, valid in zip(logits, valids):
            present = ops.max(ops.cast(valid, modality_logits.dtype), axis=1, keepdims=True)
            total = total + present * modality_logits
            count = count + present
        return total / ops.maximum(count, 1.0)
