"""Model builders: MATER, its variants and the LSTM baseline, from one config.

`MATER` (mater.py) wires its parts, each in its own file: `ModalityEncoder` (a branch's
backbone), `ClassifierHead` (a branch's logits), `LogMelInput` (the learned audio front end's
input stage) and `ensemble_outputs` (a deep ensemble's members averaged).
"""

from mater_tf.models.classifier_head import ClassifierHead
from mater_tf.models.ensemble import ensemble_outputs
from mater_tf.models.factory import build_model
from mater_tf.models.log_mel_input import LogMelInput
from mater_tf.models.mater import MATER
from mater_tf.models.modality_encoder import ModalityEncoder

__all__ = ["MATER", "ClassifierHead", "LogMelInput", "ModalityEncoder", "build_model", "ensemble_outputs"]
