"""Window embeddings: the VGGish log-mel front end and networks, VGG-M, generic Keras embedders."""

from mater_tf.features.log_mel import log_mel

__all__ = ["log_mel"]
