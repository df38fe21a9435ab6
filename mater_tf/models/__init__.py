"""Model builders: MATER, its variants and the LSTM baseline, from one config."""

from mater_tf.models.factory import build_model
from mater_tf.models.mater import MATER

__all__ = ["MATER", "build_model"]
