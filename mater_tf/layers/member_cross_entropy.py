"""The loss of a deep ensemble: every member's cross-entropy, averaged over members."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class MemberCrossEntropy(keras.losses.Loss):
    """Cross-entropy of every member of an ensemble on the same targets, averaged over members.

    `y_pred` is [batch, members, classes] logits (`StackMembers`); `y_true` class
    indices [batch] or, with `one_hot=True` (mixup, label smoothing), probability rows
    [batch, classes], smoothed by `label_smoothing` as Keras' categorical cross-entropy
    does (1 - e to the rows, e / classes to every class).
    Members that share no weights train independently, side by side on the same batches:
    each member's gradient is that of its own loss. Weights they share (`MATER`'s audio
    front end, when it has trainable weights) learn from the mean of their losses.
    """

    def __init__(self, one_hot=False, label_smoothing=0.0, name="member_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if label_smoothing and not one_hot:
            raise ValueError("label smoothing needs one-hot targets (one_hot=True)")
        self.one_hot = one_hot
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        members = ops.shape(y_pred)[1]
        if self.one_hot:
            targets = ops.repeat(ops.expand_dims(y_true, 1), members, axis=1)
            losses = keras.losses.categorical_crossentropy(
                targets, y_pred, from_logits=True, label_smoothing=self.label_smoothing
            )
        else:
            labels = ops.reshape(ops.cast(y_true, "int32"), (-1, 1))
            targets = ops.repeat(labels, members, axis=1)
            losses = keras.losses.sparse_categorical_crossentropy(targets, y_pred, from_logits=True)
        return ops.mean(losses, axis=1)

    def get_config(self):
        return {**super().get_config(), "one_hot": self.one_hot, "label_smoothing": self.label_smoothing}
