"""Typed experiment configuration: dataclasses, YAML files and `--set` overrides.

Every knob lives in a section dataclass with its default and a one-line doc
(the `doc` metadata): `data`, `model`, `train` and `cv`, `tune`, `paper`.
Each section checks its own values (`validate()`); the rules that tie
sections together live in `experiment.check_across_sections`. An experiment
YAML overrides the defaults, `--set section.key=value` overrides both
(OmegaConf parses, merges and type-checks; `loading` turns its errors into
one line), and the resolved config is written to the run directory before
anything else, so every later command reads it from there.

Defaults follow the paper where it gives a value (Adam, batch 64, 300 epochs,
learning rate 1e-6, plateau patience 20, 6 encoder layers, 12 folds) and the
transformer it builds on (Vaswani et al. 2017, base model) where it does not:
d_model 512 (the embeddings are 512-d and the paper adds the PE to them
unchanged, so d_model equals the embedding size), 8 heads, feed-forward 2048,
dropout 0.1.
"""

from mater_tf.config.data import DataConfig, SyntheticConfig
from mater_tf.config.experiment import ExperimentConfig, check_across_sections, validate
from mater_tf.config.loading import PRESETS_DIR, config_from_dict, load_config, preset_path, read_run_config
from mater_tf.config.model import AUDIO_FRONTENDS, ENCODERS, LOG_MEL_NORMALIZATIONS, MODALITIES, ModelConfig
from mater_tf.config.paper import TABLE1, TABLE3, PaperConfig
from mater_tf.config.train import LR_SCHEDULES, CVConfig, TrainConfig
from mater_tf.config.tune import TUNERS, TuneConfig

__all__ = [
    "AUDIO_FRONTENDS",
    "ENCODERS",
    "LOG_MEL_NORMALIZATIONS",
    "LR_SCHEDULES",
    "MODALITIES",
    "PRESETS_DIR",
    "TABLE1",
    "TABLE3",
    "TUNERS",
    "CVConfig",
    "DataConfig",
    "ExperimentConfig",
    "ModelConfig",
    "PaperConfig",
    "SyntheticConfig",
    "TrainConfig",
    "TuneConfig",
    "check_across_sections",
    "config_from_dict",
    "load_config",
    "preset_path",
    "read_run_config",
    "validate",
]
