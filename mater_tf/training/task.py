"""The task: turns an experiment config and its records into the pieces of a run.

As tensorflow/models' `official/` tasks do, `Task` builds the model, the
inputs of every split, the losses, the metrics and the optimizer from the
config; the fit loop (`trainer.py`), the run directory (`rundir.py`), the
callbacks (`callbacks.py`) and evaluation (`evaluation.py`) take those
pieces. Training, cross-validation and the tuner's trials all go through it,
so a trial trains exactly as `mater-tf cv` will. The records and subjects it
trains on come from `experiment_data`; a learned audio front end gets its
weights and statistics in `audio_frontend`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import keras
import tensorflow as tf

from mater_tf.config import ExperimentConfig
from mater_tf.data import records, schema
from mater_tf.layers import MemberCrossEntropy
from mater_tf.models import build_model
from mater_tf.training.audio_frontend import prepare_audio_frontend


class Task:
    """MATER classification on windowed-embedding records.

    Args:
        config: the experiment.
        index: the records it trains on (`experiment_data.index_for`).
    """

    def __init__(self, config: ExperimentConfig, index: records.RecordIndex):
        self.config = config
        self.index = index

    @property
    def learns_audio(self) -> bool:
        return self.config.model.learns_audio

    def steps_per_epoch(self, subjects: Iterable[str]) -> int:
        return max(1, math.ceil(records.count_clips(self.index, subjects) / self.config.train.batch_size))

    def build_inputs(
        self,
        subjects: Iterable[str],
        training: bool = False,
        with_context: bool = False,
        epochs: tuple[int, int] = (0, 1),
    ) -> tf.data.Dataset:
        """The input pipeline of a split; training splits yield epochs [first, last) (see records)."""
        return records.make_dataset(
            subjects=subjects,
            training=training,
            with_context=with_context,
            epochs=epochs,
            **self.input_options(),
        )

    def input_options(self) -> dict:
        """`records.make_dataset`'s settings that every split of this task shares (all but the
        subjects, training, epochs and context): the tuner builds its datasets from them too."""
        return dict(
            index=self.index,
            modalities=self.config.model.modalities,
            batch_size=self.config.train.batch_size,
            seed=self.config.train.seed,
            audio_log_mel=self.learns_audio,
            voice_descriptors=self.learns_audio and self.config.model.utterance_functionals,
            mixup_alpha=self.config.train.mixup_alpha,
            ensemble=self.config.model.ensemble > 1,
            one_hot=self.one_hot_targets,
        )

    def build_model(self, train_data: tf.data.Dataset | None = None) -> keras.Model:
        """The experiment's model for these records; a VGGish front end gets its weights here,
        and a "band" log-mel normalisation its statistics from `train_data` (the training split)."""
        index = self.index
        model = build_model(
            self.config.model,
            index.audio_dim,
            index.face_dim,
            index.num_classes,
            index.num_windows,
            index.log_mel_frames,
        )
        if self.learns_audio:
            prepare_audio_frontend(model, self.config.model, train_data)
        return model

    def output_keys(self) -> list[str]:
        return ["logits"] + [f"{m}_logits" for m in self.config.model.modalities]

    @property
    def one_hot_targets(self) -> bool:
        """Mixup and label smoothing make the targets (mixed) one-hot rows instead of class indices."""
        return self.config.train.mixup_alpha > 0 or self.config.train.label_smoothing > 0

    def build_losses(self) -> tuple[dict, dict]:
        """Cross-entropy on the fused logits (paper section 3.1); `train.modality_loss_weight` > 0
        adds each modality's own loss. An ensemble (`model.ensemble` > 1) puts these losses on
        its members' outputs instead, each member on its own (`MemberCrossEntropy`); its
        averaged outputs carry the metrics only. `train.label_smoothing` smooths the targets of
        every loss. Returns (losses, loss weights)."""
        weights = {
            key: 1.0 if key == "logits" else self.config.train.modality_loss_weight
            for key in self.output_keys()
        }
        smoothing = self.config.train.label_smoothing
        if self.config.model.ensemble > 1:
            member_loss = dict(one_hot=self.one_hot_targets, label_smoothing=smoothing)
            return (
                {schema.member_key(key): MemberCrossEntropy(**member_loss) for key in weights},
                {schema.member_key(key): weight for key, weight in weights.items()},
            )
        loss, options = (
            (keras.losses.CategoricalCrossentropy, {"label_smoothing": smoothing})
            if self.one_hot_targets  # mixup or label smoothing
            else (keras.losses.SparseCategoricalCrossentropy, {})
        )
        return {key: loss(from_logits=True, **options) for key in weights}, weights

    def build_metrics(self) -> dict:
        accuracy = (
            keras.metrics.CategoricalAccuracy
            if self.one_hot_targets
            else keras.metrics.SparseCategoricalAccuracy
        )
        return {key: [accuracy(name="accuracy")] for key in self.output_keys()}

    def build_optimizer(self, epochs: int, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        """Adam (AdamW with `train.weight_decay` > 0); with `train.lr_schedule: cosine` its learning rate follows a cosine decay to 0
        over `epochs` x `steps_per_epoch` steps (a function of the optimizer's step count, which
        the backup keeps, so a resumed run stays on it). The plateau schedule is a callback."""
        train = self.config.train
        learning_rate = train.learning_rate
        if train.lr_schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(
                train.learning_rate, decay_steps=epochs * steps_per_epoch, alpha=0.0
            )
        if train.weight_decay:
            return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=train.weight_decay)
        return keras.optimizers.Adam(learning_rate=learning_rate)

    @property
    def jit_compile(self) -> bool:
        """Whether the training step is XLA-compiled (`train.jit_compile`; auto: only with a GPU)."""
        setting = self.config.train.jit_compile
        if setting == "auto":
            return bool(tf.config.list_physical_devices("GPU"))
        return setting == "true"

    def compile(self, model: keras.Model, epochs: int, steps_per_epoch: int) -> None:
        losses, weights = self.build_losses()
        model.compile(
            optimizer=self.build_optimizer(epochs, steps_per_epoch),
            loss=losses,
            loss_weights=weights,
            metrics=self.build_metrics(),
            jit_compile=self.jit_compile,
        )
