"""One experiment: every section, its serialisation, and the checks that span sections."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import yaml

from mater_tf.config.data import DataConfig
from mater_tf.config.fields import require, setting
from mater_tf.config.model import ModelConfig
from mater_tf.config.paper import PaperConfig
from mater_tf.config.train import CVConfig, TrainConfig
from mater_tf.config.tune import TuneConfig


@dataclasses.dataclass
class ExperimentConfig:
    """One experiment: data, model, training and evaluation protocol."""

    name: str = setting("experiment", "Name of the experiment; runs go to runs/<name>/.")
    description: str = setting("", "Free text, copied into the run directory.")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    cv: CVConfig = dataclasses.field(default_factory=CVConfig)
    tune: TuneConfig = dataclasses.field(default_factory=TuneConfig)
    paper: PaperConfig = dataclasses.field(default_factory=PaperConfig)

    def sections(self) -> tuple:
        return (self.data, self.model, self.train, self.cv, self.tune, self.paper)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def fingerprint(self) -> str:
        """A short hash of the resolved values (everything that changes the result)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


def check_across_sections(config: ExperimentConfig) -> None:
    """The rules that tie one section to another, in one place."""
    train, cv = config.train, config.cv
    require(
        cv.validation or train.early_stopping_patience == 0,
        "train.early_stopping_patience needs validation subjects: set "
        "train.early_stopping_patience=0 with cv.validation=false (or keep cv.validation=true)",
    )


def validate(config: ExperimentConfig) -> ExperimentConfig:
    """Checks every section, then the rules across sections; returns `config` unchanged.

    Raises:
        UserError: naming the first bad key, its value and a fix that works.
    """
    for section in config.sections():
        section.validate()
    check_across_sections(config)
    return config
