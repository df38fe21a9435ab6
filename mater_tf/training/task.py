"""The task: turns an experiment config and its records into the pieces of a run.

As tensorflow/models' `official/` tasks do, `Task` builds the model, the
inputs of every split, the losses, the metrics and the optimizer from the
config; the fit loop (`trainer.py`), the run directory (`rundir.py`), the
callbacks (`callbacks.py`) and evaluation (`evaluation.py`) take those
pieces. Training, cross-validation and the tuner's trials all go through it,
so a trial trains exactly as `mater-tf cv` will.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mater_tf.config import ExperimentConfig
from mater_tf.data import folds, records, schema, synthetic
from mater_tf.errors import UserError
from mater_tf.layers import MemberCrossEntropy
from mater_tf.models import build_model


def resolve_records(config: ExperimentConfig, data_dir: Path) -> Path:
    """The records to train on (resolved); the synthetic corpus is written to `data_dir` once."""
    if config.data.source == "synthetic":
        return synthetic.write_corpus(config.data.synthetic, data_dir).resolve()
    source = Path(config.data.source).expanduser()
    return source.resolve() if source.exists() else source


def index_for(config: ExperimentConfig, records_path) -> records.RecordIndex:
    """Indexes finished records and checks them against the config's expected windowing."""
    records.check_complete(records_path)
    index = records.index_records(records_path)
    windows, seconds = config.data.num_windows, config.data.window_seconds  # 0 = any
    wrong_windows = bool(windows) and index.num_windows != windows
    wrong_seconds = bool(seconds) and abs(index.window_seconds - seconds) > 1e-6
    if wrong_windows or wrong_seconds:
        # Name only what the experiment sets: a setting left at 0 (any) is not a windowing to prepare.
        expected = " x ".join(part for part in (windows and f"{windows}", seconds and f"{seconds} s") if part)
        prepare_flags = (
            f"--windows {windows or index.num_windows} --window-seconds {seconds or index.window_seconds}"
        )
        records_settings = " ".join(
            setting
            for setting, wrong in (
                (f"--set data.num_windows={index.num_windows}", wrong_windows),
                (f"--set data.window_seconds={index.window_seconds}", wrong_seconds),
            )
            if wrong
        )
        raise UserError(
            f"the records at {records_path} have {index.num_windows} x {index.window_seconds} s windows but the "
            f"experiment expects {expected} windows; prepare them with {prepare_flags}, point data.source at "
            f"the right folder, or run the experiment at the records' windowing: {records_settings}"
        )
    return index


def fold_subjects(config: ExperimentConfig, index: records.RecordIndex) -> list[list[str]]:
    """The folds of the experiment: the user's fold file (cv.folds_file) or consecutive sorted subjects."""
    if config.cv.folds_file:
        subjects = folds.load_folds_file(config.cv.folds_file, index.subject_ids)
        if len(subjects) != config.cv.num_folds:
            raise UserError(
                f"cv.folds_file {config.cv.folds_file} has {len(subjects)} folds but cv.num_folds="
                f"{config.cv.num_folds}: --set cv.num_folds={len(subjects)}"
            )
        return subjects
    return folds.subject_disjoint_folds(index.subject_ids, config.cv.num_folds, config.cv.validation)


def make_split(config: ExperimentConfig, index: records.RecordIndex, test_fold: int | None = None):
    """The train / validation / test subjects of one fold of the experiment."""
    fold = config.cv.test_fold if test_fold is None else test_fold
    return folds.split_for_fold(fold_subjects(config, index), fold, config.cv.validation)


class Task:
    """MATER classification on windowed-embedding records.

    Args:
        config: the experiment.
        index: the records it trains on (`index_for`).
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
            frontend_layer = model.get_layer("audio_frontend")
            if self.config.model.audio_frontend_weights:
                load_vggish_frontend(frontend_layer.frontend, self.config.model.audio_frontend_weights)
            frontend_layer.frontend.trainable = self.config.model.audio_frontend_trainable
            if train_data is not None:
                valid_name = schema.MODEL_INPUTS["audio"][1]
                frontend_layer.adapt(
                    train_data.map(
                        lambda inputs, *_: tf.boolean_mask(
                            inputs[schema.LOG_MEL_INPUT], inputs[valid_name] > 0
                        )
                    )
                )
                if self.config.model.utterance_functionals:
                    # Standardised with the training split's statistics, as the field's SVM baseline is.
                    functionals = model.get_layer("utterance_functionals")
                    standardize(
                        model.get_layer("utterance_normalization"),
                        train_data.map(
                            lambda inputs, *_: functionals(
                                inputs[schema.LOG_MEL_INPUT],
                                inputs[schema.VOICE_DESCRIPTORS_INPUT],
                                inputs[valid_name],
                            )
                        ),
                    )
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


def standardize(layer: keras.layers.Normalization, data) -> None:
    """Adapts a Normalization layer to `data`, leaving features that never vary unscaled (variance
    1, as scikit-learn's StandardScaler does): Keras would divide them by 1e-7, and any value
    other than the training one would then swamp the output."""
    layer.adapt(data)
    variance = keras.ops.convert_to_numpy(layer.adapt_variance)
    layer.adapt_variance.assign(np.where(variance < 1e-8, 1.0, variance).astype(variance.dtype))
    layer.finalize_state()


def finalize_normalizations(model: keras.Model) -> None:
    """Makes every adapted Normalization layer of `model` use its (assigned) statistics:
    `set_weights` assigns their variables, but the layer keeps the tensors it made at build."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()


def load_vggish_frontend(frontend: keras.Model, source: str) -> None:
    """Fills a VGGish front end from a checkpoint, a TF-Hub folder or a converted .weights.h5."""
    from mater_tf.features.vggish import CONV_LAYERS, build_vggish, load_vggish_weights

    if source.endswith(".weights.h5"):  # made by mater-tf weights convert-vggish
        converted = build_vggish("conv4_2")
        converted.load_weights(source)
        source = {
            f"{scope}/{kind}": value
            for layer, scope in CONV_LAYERS.items()
            for kind, value in zip(("weights", "biases"), converted.get_layer(layer).get_weights())
        }
    load_vggish_weights(frontend, source)
