"""Mean pooling over the present windows of a sequence."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedMeanPooling(keras.layers.Layer):
    """Mean over the present windows (paper eq. 2); absent windows count for nothing.

    A clip with no present window pools to zeros. A Keras mask arriving from
    an LSTM says the same as `valid` and ends here.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs, valid):
        weights = ops.cast(valid, inputs.dtype)[:, :, None]
        total = ops.sum(inputs * weights, axis=1)
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)
        return total / count
