"""Keras layers of MATER. Masks are explicit inputs: 1 = window present.

One layer (or family) per module; only `keras` and `keras.ops` are used, so
the layers run on any Keras backend and inside SavedModel signatures. Every
layer is registered as "mater_tf>ClassName", the name saved models refer to.
"""

from mater_tf.layers.encoder_block import EncoderBlock
from mater_tf.layers.fusion import EnsembleAverage, LateFusion, MemberCrossEntropy, StackMembers
from mater_tf.layers.package import PACKAGE
from mater_tf.layers.pooling import MaskedConcatPooling, MaskedMeanPooling
from mater_tf.layers.positional_encoding import PositionalEncoding, sinusoidal_encoding
from mater_tf.layers.self_attention import SelfAttention

__all__ = [
    "PACKAGE",
    "EncoderBlock",
    "EnsembleAverage",
    "LateFusion",
    "MaskedConcatPooling",
    "MaskedMeanPooling",
    "MemberCrossEntropy",
    "PositionalEncoding",
    "SelfAttention",
    "StackMembers",
    "sinusoidal_encoding",
]
