"""The backbone of one modality's branch: window embeddings [batch, T, D] -> encoded windows."""

from __future__ import annotations

import math

import keras
from keras import ops

from mater_tf.layers import EncoderBlock, PositionalEncoding

ENCODERS = ("transformer", "lstm")
# How the projected embeddings are scaled before the PE is added (see `ModalityEncoder`).
EMBEDDING_SCALES = ("sqrt_d_model", "none")


class ModalityEncoder:
    """Projection to `d_model`, scale, sinusoidal PE, dropout and `num_layers` encoder layers
    (MATER's Transformer encoder blocks, or LSTMs for the baseline) over one modality's windows.

    It is not a Keras layer but the set of named layers `MATER` wires into its one functional
    graph (`{modality}_projection{suffix}`, `{modality}_encoder_{k}{suffix}`, ...): a `.keras`
    file addresses weights by their place in that graph, so files saved before this split load.

    Args:
        modality: "audio" or "face" (the layers' name prefix).
        d_model, num_layers, num_heads, ff_dim, dropout: the encoder's sizes.
        encoder: one of `ENCODERS`.
        positional_encoding: add the sinusoidal PE.
        attention: keep multi-head self-attention in the encoder blocks.
        scale_embeddings: multiply the projection by sqrt(d_model) before the PE, as the
            Transformer does (Vaswani et al. 3.4). The embedding inputs are l2-normalised, so
            at initialisation their projection has RMS about sqrt(2 / (D + d_model)) per
            component (0.044 at D = d_model = 512), 16 times below the PE's 0.71: the PE
            swamped the windows' content, and at the paper's learning rate of 1e-6 the
            projection never caught up. Scaled, the two are of the same order (RMS ratio
            about 1.4). The scale applies whether or not the PE is on, so the PE ablation
            changes the PE alone. `MATER` does not scale a learned audio front end's output:
            the small front end's batch-normalised output already projects to about the PE's
            size (ratio 1.4 at d_model 64, 0.6 at 512, in training mode), and scaling it would
            put it 8-14 times above the PE; the VGGish front end's output is left unscaled alike.
        suffix: the layers' name suffix (`_member{k}` in an ensemble).
    """

    def __init__(
        self,
        modality,
        *,
        d_model,
        num_layers,
        num_heads,
        ff_dim,
        dropout,
        encoder="transformer",
        positional_encoding=True,
        attention=True,
        scale_embeddings=True,
        suffix="",
    ):
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be 'transformer' or 'lstm', got {encoder!r}")
        self.modality = modality
        self.encoder = encoder
        self.attention = attention
        self.scale = math.sqrt(d_model) if scale_embeddings else None
        self.projection = keras.layers.Dense(d_model, name=f"{modality}_projection{suffix}")
        self.positional_encoding = (
            PositionalEncoding(name=f"{modality}_positional_encoding{suffix}")
            if positional_encoding
            else None
        )
        self.input_dropout = keras.layers.Dropout(dropout, name=f"{modality}_input_dropout{suffix}")
        if encoder == "transformer":
            self.blocks = [
                EncoderBlock(
                    d_model,
                    num_heads,
                    ff_dim,
                    dropout=dropout,
                    use_attention=attention,
                    name=f"{modality}_encoder_{layer}{suffix}",
                )
                for layer in range(num_layers)
            ]
        else:
            self.blocks = [
                keras.layers.LSTM(d_model, return_sequences=True, name=f"{modality}_lstm_{layer}{suffix}")
                for layer in range(num_layers)
            ]

    def __call__(self, embeddings, valid, attention_scores: dict | None = None):
        """Encodes `embeddings` [batch, T, D] (absent windows already zero) under `valid`
        [batch, T] (1 = present) to [batch, T, d_model]. With a dict, the attention weights of
        every block go into `attention_scores` as `{modality}_attention_{k}`."""
        x = self.projection(embeddings)
        if self.scale is not None:
            x = x * self.scale
        if self.positional_encoding is not None:
            x = self.positional_encoding(x)
        x = self.input_dropout(x)
        for layer, block in enumerate(self.blocks):
            if self.encoder == "lstm":
                x = block(x, mask=ops.cast(valid, "bool"))
            elif self.attention and attention_scores is not None:
                x, scores = block(x, valid, return_attention_scores=True)
                attention_scores[f"{self.modality}_attention_{layer}"] = scores
            else:
                x = block(x, valid)
        return x
