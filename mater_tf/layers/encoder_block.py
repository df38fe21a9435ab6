"""One transformer encoder layer over a window sequence, with or without attention."""

from __future__ import annotations

import keras

from mater_tf.layers.package import PACKAGE
from mater_tf.layers.self_attention import SelfAttention


@keras.saving.register_keras_serializable(package=PACKAGE)
class EncoderBlock(keras.layers.Layer):
    """One transformer encoder layer (post-norm, as in Vaswani et al.).

    x = LayerNorm(x + Dropout(MHSA(x)));  x = LayerNorm(x + Dropout(FFN(x))).
    With `use_attention=False` the attention sub-layer is removed and the
    position-wise feed-forward sub-layer kept: the paper's baseline (which is
    why keras-hub's TransformerEncoder, always with attention, is not used).
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

    def build(self, inputs_shape, valid_shape=None):
        # The attribute and layer names are those of the weights in saved models.
        input_shape = tuple(inputs_shape)
        if self.use_attention:
            # Same weights and numbers as keras.layers.MultiHeadAttention, which
            # models saved before it was replaced hold (see SelfAttention).
            self.attention = SelfAttention(
                num_heads=self.num_heads,
                key_dim=self.d_model // self.num_heads,
                dropout=self.dropout,
                dtype=self.dtype_policy,
                name="self_attention",
            )
            self.attention.build(input_shape, input_shape[:-1])
            self.attention_norm = keras.layers.LayerNormalization(
                epsilon=1e-6, dtype=self.dtype_policy, name="attention_norm"
            )
            self.attention_norm.build(input_shape)
            self.attention_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.ff_inner = keras.layers.Dense(
            self.ff_dim, activation="relu", dtype=self.dtype_policy, name="ff_inner"
        )
        self.ff_inner.build(input_shape)
        self.ff_outer = keras.layers.Dense(self.d_model, dtype=self.dtype_policy, name="ff_outer")
        self.ff_outer.build(input_shape[:-1] + (self.ff_dim,))
        self.ff_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.ff_norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype=self.dtype_policy, name="ff_norm")
        self.ff_norm.build(input_shape)
        self.built = True

    def call(self, inputs, valid, training=None, return_attention_scores=False):
        scores = None
        x = inputs
        if self.use_attention:
            attended, scores = self.attention(x, valid, return_attention_scores=True, training=training)
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
