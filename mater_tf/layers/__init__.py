"""Keras layers of MATER. Masks are explicit inputs: 1 = window present.

Only `keras` and `keras.ops` are used here, so the layers run on any Keras
backend and inside SavedModel signatures.
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "mater_tf"


def sinusoidal_encoding(length, depth: int):
    """The PE table of Vaswani et al. as the paper writes it, [length, depth].

    PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)).
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


@keras.saving.register_keras_serializable(package=PACKAGE)
class EncoderBlock(keras.layers.Layer):
    """One transformer encoder layer (post-norm, as in Vaswani et al.).

    x = LayerNorm(x + Dropout(MHSA(x)));  x = LayerNorm(x + Dropout(FFN(x))).
    With `use_attention=False` the attention sub-layer is removed and the
    position-wise feed-forward sub-layer kept: the paper's baseline.
    Absent windows are never attended to.

    Args:
        d_model: width of the sequence.
        num_heads: attention heads (d_model / num_heads per head).
        ff_dim: hidden width of the feed-forward sub-layer.
        dropout: dropout rate on attention weights and sub-layer outputs.
        use_attention: keep the self-attention sub-layer.
    """

    def __init__(self, d_model, num_heads, ff_dim, dropout=0.1, use_attention=True, **kwargs):
        super().__init__(**kwargs)
        self.d_model = d_model
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.dropout = dropout
        self.use_attention = use_attention
        if use_attention:
            self.attention = keras.layers.MultiHeadAttention(
                num_heads=num_heads,
                key_dim=d_model // num_heads,
                dropout=dropout,
                name="self_attention",
            )
            self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="attention_norm")
            self.attention_dropout = keras.layers.Dropout(dropout)
        self.ff_inner = keras.layers.Dense(ff_dim, activation="relu", name="ff_inner")
        self.ff_outer = keras.layers.Dense(d_model, name="ff_outer")
        self.ff_dropout = keras.layers.Dropout(dropout)
        self.ff_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="ff_norm")

    def build(self, inputs_shape, valid_shape=None):
        input_shape = inputs_shape
        if self.use_attention:
            self.attention.build(input_shape, input_shape)
            self.attention_norm.build(input_shape)
        self.ff_inner.build(input_shape)
        self.ff_outer.build(tuple(input_shape[:-1]) + (self.ff_dim,))
        self.ff_norm.build(input_shape)
        self.built = True

    def call(self, inputs, valid, training=None, return_attention_scores=False):
        scores = None
        x = inputs
        if self.use_attention:
            keys_present = ops.cast(valid, "bool")[:, None, :]
            attention_mask = ops.broadcast_to(
                keys_present, (ops.shape(valid)[0], ops.shape(valid)[1], ops.shape(valid)[1])
            )
            attended, scores = self.attention(
                x, x, attention_mask=attention_mask, return_attention_scores=True, training=training
            )
            x = self.attention_norm(x + self.attention_dropout(attended, training=training))
        feed_forward = self.ff_outer(self.ff_inner(x))
        x = self.ff_norm(x + self.ff_dropout(feed_forward, training=training))
        if return_attention_scores:
            return x, scores
        return x

    def get_config(self):
        config = super().get_config()
        config.update(
            d_model=self.d_model,
            num_heads=self.num_heads,
            ff_dim=self.ff_dim,
            dropout=self.dropout,
            use_attention=self.use_attention,
        )
        return config
