"""Late fusion of the modalities' logits."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


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
class EnsembleAverage(keras.layers.Layer):
    """The logits of a deep ensemble: log of the members' mean class probabilities.

    Softmax of the output is exactly the average of the members' softmaxes
    (Lakshminarayanan et al., 2017), so every consumer of logits (argmax,
    softmax, the serving signature) reads the ensemble's probabilities.
    """

    def call(self, logits):
        log_probabilities = ops.stack([ops.log_softmax(member, axis=-1) for member in logits], axis=0)
        return ops.logsumexp(log_probabilities, axis=0) - ops.log(float(len(logits)))


@keras.saving.register_keras_serializable(package=PACKAGE)
class StackMembers(keras.layers.Layer):
    """The members' logits side by side, [batch, members, classes]: what each member's own
    loss reads (`MemberCrossEntropy`)."""

    def call(self, logits):
        return ops.stack(logits, axis=1)


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
