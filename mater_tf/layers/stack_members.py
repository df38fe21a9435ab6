"""An ensemble's members' logits side by side, for their own losses."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class StackMembers(keras.layers.Layer):
    """The members' logits side by side, [batch, members, classes]: what each member's own
    loss reads (`MemberCrossEntropy`)."""

    def call(self, logits):
        return ops.stack(logits, axis=1)
