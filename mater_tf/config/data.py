"""The `data` section: where the windowed-embedding records come from, and the synthetic corpus."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mater_tf.config.fields import at_least, fraction, require, setting


@dataclasses.dataclass
class SyntheticConfig:
    """The built-in synthetic corpus (see `mater_tf.data.synthetic`)."""

    KEY: ClassVar[str] = "data.synthetic"

    num_subjects: int = setting(24, "Speakers; folds are made of whole speakers.")
    clips_per_subject: int = setting(40, "Clips per speaker, classes balanced.")
    num_classes: int = setting(6, "Emotion classes (at least 4).")
    num_windows: int = setting(8, "Windows per clip (T).")
    min_valid_windows: int = setting(6, "Shortest clip in windows; the rest are masked.")
    audio_dim: int = setting(32, "Audio embedding size (D_a).")
    face_dim: int = setting(32, "Face embedding size (D_v).")
    evidence_windows: int = setting(2, "Consecutive windows that carry the emotion.")
    signal_strength: float = setting(0.8, "Evidence norm relative to per-window noise.")
    face_dropout: float = setting(0.1, "Chance that a window has no face (masked).")
    seed: int = setting(0, "Seed of the corpus; the same seed gives the same records.")

    def validate(self) -> None:
        """Refuses a corpus the generator cannot build (each field, then how they fit together)."""
        for name in ("num_subjects", "clips_per_subject", "audio_dim", "face_dim", "evidence_windows"):
            at_least(self, name, 1)
        at_least(self, "num_classes", 4)
        at_least(self, "num_windows", 2)
        at_least(self, "signal_strength", 0.0)
        fraction(self, "face_dropout")
        require(
            self.min_valid_windows <= self.num_windows,
            f"data.synthetic.min_valid_windows={self.min_valid_windows} must be <= num_windows="
            f"{self.num_windows}: e.g. --set data.synthetic.min_valid_windows={self.num_windows}",
        )
        require(
            self.min_valid_windows >= 2 * self.evidence_windows,
            f"data.synthetic.min_valid_windows={self.min_valid_windows} must be >= 2 * evidence_windows="
            f"{2 * self.evidence_windows}, so that early and late evidence (classes 4 and 5) never overlap: "
            f"e.g. --set data.synthetic.evidence_windows={max(1, self.min_valid_windows // 2)}",
        )


@dataclasses.dataclass
class DataConfig:
    """Where the windowed-embedding records come from."""

    KEY: ClassVar[str] = "data"

    source: str = setting(
        "synthetic",
        "'synthetic' or a folder / glob of TFRecord shards following the data contract.",
    )
    num_windows: int = setting(0, "Windows per clip the records must have (0 = any).")
    window_seconds: float = setting(0.0, "Window length the records must have (0 = any).")
    synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)

    def validate(self) -> None:
        """Refuses an empty source and negative sizes, then checks the synthetic corpus."""
        require(
            bool(self.source.strip()),
            "data.source is empty: --set data.source=synthetic or a folder of TFRecord shards",
        )
        at_least(self, "num_windows", 0)
        at_least(self, "window_seconds", 0.0)
        self.synthetic.validate()
