"""The mean over time of a conv front end's feature maps (the `time` pooling)."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class TimeMean(keras.layers.Layer):
    """The mean over the time axis of feature maps [batch, time, bands, C] -> [batch, bands, C]."""

    def call(self, inputs):
        return ops.mean(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])
