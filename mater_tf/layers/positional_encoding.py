"""The sinusoidal positional encoding of Vaswani et al., as the paper uses it."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


def sinusoidal_encoding(length, depth: int):
    """The PE table of Vaswani et al. as the paper writes it, [length, depth].

    PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)).
    Every (sin, cos) pair has unit square sum, so the table's RMS is 1/sqrt(2) ~ 0.71.
    """
    positions = ops.cast(ops.arange(length), "float32")[:, None]
    dims = ops.arange(depth)
    even_index = ops.cast((dims // 2) * 2, "float32")
    angles = positions / ops.power(10000.0, even_index / float(depth))[None, :]
    is_even = ops.equal(dims % 2, 0)[None, :]
    return ops.where(is_even, ops.sin(angles), ops.cos(angles))


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionalEncoding(keras.layers.Layer):
    """Adds the sinusoidal positional encoding to a [batch, T, d] sequence."""

    def call(self, inputs):
        shape = ops.shape(inputs)
        encoding = sinusoidal_encoding(shape[1], inputs.shape[-1])
        return inputs + ops.cast(encoding, inputs.dtype)[None, :, :]

    def compute_output_shape(self, input_shape):
        return input_shape
