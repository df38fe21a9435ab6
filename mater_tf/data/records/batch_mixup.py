"""Mixup of a training batch, window by window (Zhang et al., ICLR 2018)."""

from __future__ import annotations

import tensorflow as tf

from mater_tf.data.schema import LOG_MEL_INPUT, VOICE_DESCRIPTORS_INPUT


def mixup(features: dict, alpha: float, num_classes: int, seed) -> dict:
    """Mixup of one batch (Zhang et al., ICLR 2018): clip i is mixed with clip n-1-i of the
    (shuffled) batch with weight lam_i ~ Beta(alpha, alpha), drawn from the stateless `seed`.

    Window by window, where both clips have the window its inputs (embeddings, log-mel
    patches) are lam * own + (1 - lam) * partner; where only one has it, that one's window is
    taken whole (never a window scaled towards padding); a window counts as present where it
    is present in either clip. `features["target"]` becomes lam * own + (1 - lam) * partner
    of the one-hot labels. Every other entry is the clip's own.
    """
    label = tf.one_hot(features["label"], num_classes)
    size = tf.shape(label)[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    first = tf.random.stateless_gamma([size], seeds[0], alpha=alpha)
    second = tf.random.stateless_gamma([size], seeds[1], alpha=alpha)
    lam = first / tf.maximum(first + second, 1e-12)
    mixed = dict(features)

    def window_weights(modality):
        """[batch, T]: the own clip's share of each window."""
        own = features[f"{modality}_valid"] > 0
        partner = tf.reverse(own, axis=[0])
        return tf.where(own & partner, lam[:, None], tf.cast(own, lam.dtype))

    for name, value in features.items():
        if name.endswith("_valid"):
            mixed[name] = tf.maximum(value, tf.reverse(value, axis=[0]))
        elif name.endswith("_embedding") or name in (LOG_MEL_INPUT, VOICE_DESCRIPTORS_INPUT):
            weight = window_weights(name.split("_")[0])
            weight = tf.reshape(weight, tf.concat([tf.shape(weight), [1] * (len(value.shape) - 2)], 0))
            mixed[name] = weight * value + (1.0 - weight) * tf.reverse(value, axis=[0])
    mixed["target"] = lam[:, None] * label + (1.0 - lam[:, None]) * tf.reverse(label, axis=[0])
    return mixed
