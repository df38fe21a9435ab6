"""Keras layers of MATER. Masks are explicit inputs: 1 = window present.

One layer per module, named for it; only `keras` and `keras.ops` are used, so
the layers run on any Keras backend and inside SavedModel signatures. Every
layer is registered as "mater_tf>ClassName", the name saved models refer to.
"""

from mater_tf.layers.augment import LogMelAugment
from mater_tf.layers.band_statistics import BandStatistics
from mater_tf.layers.batch_normalization import BatchNormalization
from mater_tf.layers.encoder_block import EncoderBlock
from mater_tf.layers.ensemble_average import EnsembleAverage
from mater_tf.layers.late_fusion import LateFusion
from mater_tf.layers.member_cross_entropy import MemberCrossEntropy
from mater_tf.layers.package import PACKAGE
from mater_tf.layers.patch_frontend import build_frontend, vggish_layers
from mater_tf.layers.patch_standardization import PatchStandardization
from mater_tf.layers.pooling import MaskedConcatPooling, MaskedMeanPooling
from mater_tf.layers.positional_encoding import PositionalEncoding, sinusoidal_encoding
from mater_tf.layers.self_attention import SelfAttention
from mater_tf.layers.stack_members import StackMembers
from mater_tf.layers.time_mean import TimeMean
from mater_tf.layers.utterance_functionals import UtteranceFunctionals
from mater_tf.layers.window_frontend import WindowFrontend, clip_standardize

__all__ = [
    "PACKAGE",
    "BandStatistics",
    "BatchNormalization",
    "EncoderBlock",
    "EnsembleAverage",
    "LateFusion",
    "LogMelAugment",
    "MaskedConcatPooling",
    "MaskedMeanPooling",
    "MemberCrossEntropy",
    "PatchStandardization",
    "PositionalEncoding",
    "SelfAttention",
    "StackMembers",
    "TimeMean",
    "UtteranceFunctionals",
    "WindowFrontend",
    "build_frontend",
    "clip_standardize",
    "sinusoidal_encoding",
    "vggish_layers",
]
