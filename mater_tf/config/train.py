"""The `train` and `cv` sections: optimisation (paper section 3.1) and subject-disjoint cross-validation."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mater_tf.config.fields import above_zero, at_least, fraction, one_of, require, setting

LR_SCHEDULES = ("plateau", "cosine")
JIT_COMPILE = ("auto", "true", "false")
DISTRIBUTIONS = ("none", "mirrored", "multi_worker")
FOLDS_FILE_SUFFIXES = (".json", ".csv")
# cv.test_fold of a run with no test fold: every subject trains (a model to ship).
NO_TEST_FOLD = -1


@dataclasses.dataclass
class TrainConfig:
    """Optimisation (paper section 3.1)."""

    KEY: ClassVar[str] = "train"

    batch_size: int = setting(64, "Clips per batch (paper: 64).")
    epochs: int = setting(300, "Maximum epochs (paper: 300).")
    learning_rate: float = setting(1e-6, "Initial Adam learning rate (paper: 1e-6).")
    lr_schedule: str = setting(
        "plateau", "plateau (the paper: drop on a loss plateau) or cosine (decay to 0 over train.epochs)."
    )
    lr_patience: int = setting(20, "Epochs without val-loss gain before the LR drops (paper: 20).")
    lr_factor: float = setting(0.1, "Factor of each LR drop.")
    min_learning_rate: float = setting(0.0, "The LR never drops below this.")
    early_stopping_patience: int = setting(0, "Stop after this many epochs without gain; 0 = off.")
    modality_loss_weight: float = setting(
        0.0, "Weight of extra per-modality losses; 0 = the paper's fused loss only."
    )
    mixup_alpha: float = setting(
        0.0,
        "Mixup (Zhang et al., ICLR 2018) of the training clips: each clip of a batch is mixed with "
        "another of the batch, inputs and one-hot labels alike, with a weight drawn from "
        "Beta(alpha, alpha); 0 = off.",
    )
    label_smoothing: float = setting(
        0.0,
        "Label smoothing (Szegedy et al., 2016): the training targets give 1 - e to the clip's class "
        "and spread e evenly over all classes, so the network is not pushed to certainty on the "
        "training speakers; the losses (validation too) use them, the accuracies the clips' own "
        "labels; 0 = off (the paper).",
    )
    weight_decay: float = setting(
        0.0,
        "Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): each step every weight shrinks by "
        "learning rate x weight_decay; 0 = plain Adam (the paper).",
    )
    seed: int = setting(0, "Seed of weights, dropout, shuffling and mixup.")
    jit_compile: str = setting(
        "auto",
        "XLA-compile the training step: auto (on with a GPU, as Keras chooses; off on a CPU, where it "
        "measured slower: docs/performance.md), true or false. With XLA on, TensorFlow's op determinism is "
        "left off (Keras refuses XLA under it), so a resumed run matches an uninterrupted one only as "
        "far as XLA is deterministic.",
    )
    distribution: str = setting(
        "none",
        "Where training runs: none (one device), mirrored (every GPU of this machine, "
        "tf.distribute.MirroredStrategy; one replica on a CPU-only machine) or multi_worker (several "
        "processes or machines, tf.distribute.MultiWorkerMirroredStrategy; each worker runs the same "
        "command with its TF_CONFIG; train.batch_size is the global batch). docs/scaling_out.md.",
    )

    def validate(self) -> None:
        """Refuses sizes, rates and schedules that cannot train."""
        at_least(self, "batch_size", 1)
        at_least(self, "epochs", 1)
        above_zero(self, "learning_rate")
        one_of(self, "lr_schedule", LR_SCHEDULES)
        at_least(self, "lr_patience", 1)
        require(
            0.0 < self.lr_factor < 1.0,
            f"train.lr_factor={self.lr_factor} must be in (0, 1): e.g. --set train.lr_factor=0.1",
        )
        at_least(self, "min_learning_rate", 0.0)
        at_least(self, "early_stopping_patience", 0)
        at_least(self, "modality_loss_weight", 0.0)
        at_least(self, "mixup_alpha", 0.0)
        fraction(self, "label_smoothing")
        at_least(self, "weight_decay", 0.0)
        self.jit_compile = str(self.jit_compile).lower()  # a YAML `true` arrives as the bool
        one_of(self, "jit_compile", JIT_COMPILE)
        one_of(self, "distribution", DISTRIBUTIONS)


@dataclasses.dataclass
class CVConfig:
    """Subject-disjoint cross-validation (paper: 12 folds RAVDESS, 10 CREMA-D)."""

    KEY: ClassVar[str] = "cv"

    num_folds: int = setting(12, "Folds of whole subjects.")
    test_fold: int = setting(
        0,
        "Fold held out by `mater-tf train` (cv runs them all); -1 = none: every subject trains (a model "
        "to ship, whose held-out estimate comes from mater-tf cv; needs cv.validation=false).",
    )
    validation: bool = setting(
        True,
        "Hold out the fold after the test fold for the LR plateau, early stopping and the best "
        "checkpoint; false = the paper's protocol: every other fold trains for train.epochs, the "
        "last weights are kept and the LR plateau watches the training loss.",
    )
    folds_file: str = setting(
        "",
        "A JSON or CSV of subject -> fold (a peer's published split); '' = folds of consecutive "
        "sorted subjects.",
    )
    nested_tuning: bool = setting(
        False,
        "mater-tf cv runs a Keras Tuner search (tune.*) inside every fold on that fold's training "
        "subjects only, then trains the fold with its best trial: the honest way to report a tuned number.",
    )

    def validate(self) -> None:
        """Refuses fold counts the protocol cannot split and a test fold out of range."""
        if self.validation:
            require(
                self.num_folds >= 3,
                f"cv.num_folds={self.num_folds} must be >= 3 with cv.validation=true (test, validation "
                "and training folds): --set cv.num_folds=3 or more, or --set cv.validation=false "
                "(the paper's protocol, 2 folds suffice; it needs train.early_stopping_patience=0)",
            )
        else:
            require(
                self.num_folds >= 2,
                f"cv.num_folds={self.num_folds} must be >= 2 (a test and a training fold): "
                "--set cv.num_folds=2 or more",
            )
        require(
            self.test_fold != NO_TEST_FOLD or not self.validation,
            f"cv.test_fold={NO_TEST_FOLD} (no test fold: every subject trains) leaves no fold to validate "
            "on: add --set cv.validation=false (the last weights are kept; the held-out estimate comes from "
            "mater-tf cv)",
        )
        require(
            self.test_fold == NO_TEST_FOLD or 0 <= self.test_fold < self.num_folds,
            f"cv.test_fold={self.test_fold} must be in [0, cv.num_folds={self.num_folds}), or -1 for no test "
            f"fold: e.g. --set cv.test_fold=0 (folds are numbered 0..{self.num_folds - 1})",
        )
        require(
            not self.folds_file or self.folds_file.lower().endswith(FOLDS_FILE_SUFFIXES),
            f"cv.folds_file={self.folds_file!r} must be a .json or .csv file of subject -> fold "
            "(or --set cv.folds_file= for folds of consecutive sorted subjects)",
        )
