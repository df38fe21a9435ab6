"""Pooling over the present windows of a sequence: their mean (the paper) or their concatenation."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


class _WindowPooling(keras.layers.Layer):
    """A pooling of windows [batch, T, d] with `valid` [batch, T]; a Keras mask arriving
    from an LSTM says the same as `valid` and ends here."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedMeanPooling(_WindowPooling):
    """Mean over the present windows (paper eq. 2); absent windows count for nothing.

    A clip with no present window pools to zeros.
    """

    def call(self, inputs, valid):
        weights = ops.cast(valid, inputs.dtype)[:, :, None]
        total = ops.sum(inputs * weights, axis=1)
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)
        return total / count


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedConcatPooling(_WindowPooling):
    """The windows side by side [batch, T, d] -> [batch, T x d], absent windows as zeros.

    Unlike the mean, the result keeps which window said what: a head on it can
    weigh the start of a clip differently from its end (in a corpus whose clips
    are one fixed sentence, where a stretch of the sentence sits matters).
    It needs a fixed T, which MATER's inputs have.
    """

    def call(self, inputs, valid):
        present = inputs * ops.cast(valid, inputs.dtype)[:, :, None]
        return ops.reshape(present, (ops.shape(inputs)[0], -1))

    def compute_output_shape(self, inputs_shape, valid_shape=None):
        return (inputs_shape[0], inputs_shape[1] * inputs_shape[2])
