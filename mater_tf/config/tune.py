"""The `tune` section: the Keras Tuner search of `mater-tf tune`."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mater_tf.config.fields import at_least, one_of, require, setting

TUNERS = ("random", "hyperband", "bayesian")


@dataclasses.dataclass
class TuneConfig:
    """Keras Tuner search (mater-tf tune). An empty list leaves that knob at its config value."""

    KEY: ClassVar[str] = "tune"

    algorithm: str = setting("random", "random, hyperband or bayesian.")
    max_trials: int = setting(10, "Trials (random, bayesian); hyperband sizes itself from max_epochs.")
    epochs: int = setting(20, "Epochs per trial (hyperband: the most any trial gets).")
    num_heads: list[int] = setting([2, 4, 8], "Head counts to try (each must divide d_model).")
    learning_rate: list[float] = setting(
        [1e-5, 1e-2], "Learning-rate range [low, high], sampled log-uniformly."
    )
    num_layers: list[int] = setting([], "Encoder depths to try.")
    d_model: list[int] = setting([], "Encoder widths to try.")
    ff_dim: list[int] = setting([], "Feed-forward widths to try.")
    dropout: list[float] = setting([], "Dropout rates to try.")
    seed: int = setting(0, "Seed of the search.")
    searched_subjects: list[str] = setting(
        [],
        "Subjects the search that chose this config trained or validated on (written by mater-tf "
        "tune); mater-tf cv and train refuse to test on them.",
    )

    def validate(self) -> None:
        """Refuses an empty or impossible search space (head counts are checked against widths by tune)."""
        one_of(self, "algorithm", TUNERS)
        at_least(self, "max_trials", 1)
        at_least(self, "epochs", 1)
        require(
            len(self.learning_rate) in (0, 2)
            and all(v > 0 for v in self.learning_rate)
            and self.learning_rate == sorted(self.learning_rate),
            f"tune.learning_rate={self.learning_rate} must be [low, high] with both > 0 and low <= high: "
            "e.g. --set 'tune.learning_rate=[1e-5,1e-2]' (or [] to keep train.learning_rate)",
        )
        for name in ("num_heads", "num_layers", "d_model", "ff_dim"):
            values, least = getattr(self, name), 0 if name == "num_layers" else 1  # 0 layers: no encoder
            require(
                all(v >= least for v in values),
                f"tune.{name}={values} must hold values >= {least}: e.g. --set 'tune.{name}=[]' to keep model.{name}",
            )
        require(
            all(0.0 <= v < 1.0 for v in self.dropout),
            f"tune.dropout={self.dropout} must hold rates in [0, 1): e.g. --set 'tune.dropout=[0.1,0.3]'",
        )
