"""A deep ensemble's logits: the log of its members' mean probabilities."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


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
