"""Batch norm whose statistics come from the present windows only (the `small` front end's)."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' batch norm on feature maps [patches, H, W, C] whose batch statistics (and
    so its moving ones) come from the patches of present windows only.

    Call it with `window_present` [patches] (1 = present; None = all). The output
    carries no Keras mask: nothing downstream reads one. It is named like the Keras
    class on purpose: a `.keras` file addresses a nested model's weights by class
    name, so front ends saved before it existed load into it.
    """

    def call(self, inputs, window_present=None, training=None):
        mask = None
        if window_present is not None:
            present = ops.cast(window_present, inputs.dtype)[:, None, None]
            mask = ops.ones_like(inputs[..., 0]) * present  # [patches, H, W], as Keras wants
        return super().call(inputs, training=training, mask=mask)

    def compute_mask(self, inputs, previous_mask=None):
        return None
