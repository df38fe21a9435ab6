"""Multi-head self-attention over a window sequence, with 2-D matmul projections."""

from __future__ import annotations

import math

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


class HeadProjection(keras.layers.Layer):
    """An affine map whose kernel keeps the head axes of `keras.layers.MultiHeadAttention`'s.

    The kernel is stored as `kernel_shape` ([d, heads, key_dim] for the query,
    key and value, [heads, key_dim, d] for the output) and the bias as
    `bias_shape`, exactly as MultiHeadAttention's EinsumDense sub-layers store
    them, so weights saved from either load into the other. The product is
    taken with the kernel flattened to 2-D: Keras' einsum path computes it as a
    broadcast batched matmul whose kernel gradient is a per-example product
    summed over the batch, several times slower to train.

    Args:
        kernel_shape: stored kernel shape; its first `input_axes` axes are contracted.
        bias_shape: stored bias shape (the output's trailing axes).
        input_axes: how many trailing input axes the kernel contracts.
    """

    def __init__(self, kernel_shape, bias_shape, input_axes=1, **kwargs):
        super().__init__(**kwargs)
        self.kernel_shape = tuple(kernel_shape)
        self.bias_shape = tuple(bias_shape)
        self.input_axes = input_axes

    def build(self, input_shape=None):
        # Created in this order (kernel, bias), as EinsumDense does: saved files index them by position.
        self.kernel = self.add_weight(
            name="kernel", shape=self.kernel_shape, initializer="glorot_uniform", trainable=True
        )
        self.bias = self.add_weight(name="bias", shape=self.bias_shape, initializer="zeros", trainable=True)
        self.built = True

    def call(self, inputs):
        # inputs [batch, time, *kernel_shape[:input_axes]] -> [batch, time, *bias_shape]
        fan_in = math.prod(self.kernel_shape[: self.input_axes])
        fan_out = math.prod(self.bias_shape)
        batch, time = ops.shape(inputs)[0], ops.shape(inputs)[1]
        flat = ops.reshape(inputs, (batch * time, fan_in))
        outputs = ops.matmul(flat, ops.reshape(self.kernel, (fan_in, fan_out))) + ops.reshape(
            self.bias, (fan_out,)
        )
        return ops.reshape(outputs, (batch, time) + self.bias_shape)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SelfAttention(keras.layers.Layer):
    """Scaled dot-product multi-head self-attention (Vaswani et al. 3.2) with key masking.

    The numbers and the weights of `keras.layers.MultiHeadAttention(num_heads,
    key_dim, dropout)` called as `mha(x, x, attention_mask=...)` with the mask
    "query t may look at key s iff s is present": the same kernels and biases
    (same shapes, names and order, so models saved with that layer load), the
    query scaled by 1/sqrt(key_dim), absent keys set to the same large negative
    number before the softmax and to zero after it, dropout on the attention
    weights. Only the way
    the projections are multiplied differs (see `HeadProjection`), and the mask
    is broadcast inside the softmax's `where` rather than materialised, so the
    layer also compiles with XLA when the batch size is unknown.

    Call with `inputs` [batch, T, d] and `valid` [batch, T] (1 = present).
    Returns the attended sequence [batch, T, d] and, with
    `return_attention_scores=True`, the attention weights [batch, heads, T, T]
    (before dropout; row t: how window t attends to every window; all zero in
    a sequence with no window present, as with MultiHeadAttention).

    Args:
        num_heads: attention heads.
        key_dim: width of each head's query, key and value.
        dropout: dropout rate on the attention weights.
    """

    def __init__(self, num_heads, key_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.dropout = dropout

    def build(self, inputs_shape, valid_shape=None):
        # Attribute names are those MultiHeadAttention's weights are saved under.
        width = inputs_shape[-1]
        heads = (self.num_heads, self.key_dim)
        self.query_dense = HeadProjection((width, *heads), heads, dtype=self.dtype_policy, name="query")
        self.key_dense = HeadProjection((width, *heads), heads, dtype=self.dtype_policy, name="key")
        self.value_dense = HeadProjection((width, *heads), heads, dtype=self.dtype_policy, name="value")
        self.output_dense = HeadProjection(
            (*heads, width), (width,), input_axes=2, dtype=self.dtype_policy, name="attention_output"
        )
        for projection in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            projection.build()
        self._dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, inputs, valid, training=None, return_attention_scores=False):
        # [batch, T, heads, key_dim] -> [batch, heads, T, key_dim]
        query = ops.transpose(self.query_dense(inputs), (0, 2, 1, 3))
        key = ops.transpose(self.key_dense(inputs), (0, 2, 1, 3))
        value = ops.transpose(self.value_dense(inputs), (0, 2, 1, 3))
        query = query * ops.cast(1.0 / math.sqrt(self.key_dim), query.dtype)
        logits = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))  # [batch, heads, T, T]
        keys_present = ops.greater(ops.cast(valid, "float32"), 0.5)[:, None, None, :]
        # The large negative number of keras.layers.Softmax, so the weights are the same.
        logits = ops.where(keys_present, logits, _large_negative_number(logits.dtype))
        # Zeroed where absent, as keras.layers.Softmax does: a row with no key present is all zero.
        scores = ops.where(keys_present, ops.softmax(logits, axis=-1), ops.cast(0.0, logits.dtype))
        attended = ops.matmul(self._dropout_layer(scores, training=training), value)
        attended = self.output_dense(ops.transpose(attended, (0, 2, 1, 3)))
        if return_attention_scores:
            return attended, scores
        return attended

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, key_dim=self.key_dim, dropout=self.dropout)
        return config


def _large_negative_number(dtype):
    """As keras.layers.Softmax masks: -1e9, or -3e4 in half precision."""
    if keras.backend.standardize_dtype(dtype) == "float16":
        return -3e4
    return -1e9
