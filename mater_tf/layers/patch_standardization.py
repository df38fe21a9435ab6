"""The `patch` normalisation of a log-mel patch."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class PatchStandardization(keras.layers.Layer):
    """Zero mean, unit variance over each patch: loudness and channel gain drop out."""

    def call(self, inputs):
        mean = ops.mean(inputs, axis=(-2, -1), keepdims=True)
        std = ops.std(inputs, axis=(-2, -1), keepdims=True)
        return (inputs - mean) / (std + 1e-3)

    def compute_output_shape(self, input_shape):
        return input_shape
