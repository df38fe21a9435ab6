"""The head of one modality's branch: encoded windows -> class logits."""

from __future__ import annotations

import keras

from mater_tf.layers import MaskedConcatPooling, MaskedMeanPooling

WINDOW_POOLINGS = {"mean": MaskedMeanPooling, "concat": MaskedConcatPooling}


class ClassifierHead:
    """Pools the encoded windows (`window_pooling`), then two FC layers (ReLU, dropout)
    give the branch's logits (paper eq. 2). With `utterance_l2` set, the audio branch also
    adds the logits of a linear layer (dropout, L2 penalty) on the clip's utterance vector.

    Like `ModalityEncoder`, a set of named layers (`{modality}_pooling{suffix}`,
    `{modality}_fc1{suffix}`, `{modality}_logits{suffix}`, `utterance_logits{suffix}`) in
    MATER's one functional graph, so saved models keep their weights' places.

    Args:
        modality: "audio" or "face" (the layers' name prefix).
        num_classes: the logits' size.
        hidden_dim: width of the first FC layer.
        dropout: dropout before the second FC layer (and before the utterance layer).
        window_pooling: a key of `WINDOW_POOLINGS`.
        utterance_l2: None for no utterance layer, else the L2 penalty of its weights.
        suffix: the layers' name suffix (`_member{k}` in an ensemble).
    """

    def __init__(
        self,
        modality,
        *,
        num_classes,
        hidden_dim,
        dropout,
        window_pooling="mean",
        utterance_l2=None,
        suffix="",
    ):
        if window_pooling not in WINDOW_POOLINGS:
            raise ValueError(
                f"window_pooling must be one of {tuple(WINDOW_POOLINGS)}, got {window_pooling!r}"
            )
        self.pooling = WINDOW_POOLINGS[window_pooling](name=f"{modality}_pooling{suffix}")
        self.fc1 = keras.layers.Dense(hidden_dim, activation="relu", name=f"{modality}_fc1{suffix}")
        self.dropout = keras.layers.Dropout(dropout, name=f"{modality}_head_dropout{suffix}")
        self.fc2 = keras.layers.Dense(num_classes, name=f"{modality}_logits{suffix}")
        self.utterance_dropout = self.utterance_logits = None
        if utterance_l2 is not None:
            self.utterance_dropout = keras.layers.Dropout(dropout, name=f"utterance_dropout{suffix}")
            self.utterance_logits = keras.layers.Dense(
                num_classes,
                kernel_regularizer=keras.regularizers.L2(utterance_l2),
                name=f"utterance_logits{suffix}",
            )

    def __call__(self, encoded, valid, utterance=None):
        """Logits [batch, classes] from `encoded` [batch, T, d] under `valid` [batch, T]; the
        utterance vector [batch, U] is read only by a head built with `utterance_l2`."""
        logits = self.fc2(self.dropout(self.fc1(self.pooling(encoded, valid))))
        if self.utterance_logits is not None:
            logits = logits + self.utterance_logits(self.utterance_dropout(utterance))
        return logits
