"""Keras callbacks of a training run: exact resume, learning-rate log, TensorBoard images.

`RunBackup` is what makes a killed-and-rerun run the run it resumed: at the
end of every finished epoch it saves the weights with the optimizer, the
counters of the other callbacks (learning-rate plateau, early stopping, best
checkpoint) and the state of every random stream in the model (dropout), and
it commits them with one atomic write of `state.json`. The input pipeline's
order is a pure function of the seed and the epoch (`records.make_dataset`),
so nothing else carries over from one epoch to the next.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mater_tf.data import records
from mater_tf.reporting.plots import attention_png, confusion_matrix_png
from mater_tf.training import evaluation

STATE_FILE = "state.json"
# What each stateful Keras callback needs to continue exactly (its on_train_begin resets them).
CALLBACK_STATE = {
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch"),
    keras.callbacks.ModelCheckpoint: ("best",),
}
IMAGES_EVERY_EPOCHS = 5


def _json_number(value):
    value = float(np.asarray(value))
    return value if math.isfinite(value) else str(value)


def _seed_generator_states(model: keras.Model) -> list:
    # Keras' save_weights leaves out the dropout layers' seed generators.
    return [variable for variable in model.variables if "seed_generator_state" in variable.path]


def read_backup_state(backup_dir: Path) -> dict | None:
    """The committed state of the last finished epoch, or None before the first."""
    path = Path(backup_dir) / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def restore_weights(model: keras.Model, backup_dir: Path, state: dict) -> None:
    """Loads the backed-up weights and optimizer (call before fit) and the random streams."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(str(Path(backup_dir) / state["weights"]))
    variables = _seed_generator_states(model)
    for variable, value in zip(variables, state["seed_generators"]):
        variable.assign(np.asarray(value, dtype=variable.dtype))


class RunBackup(keras.callbacks.Callback):
    """Backs up every finished epoch so that a rerun continues exactly; see the module doc.

    Put it last in the callback list: its `on_train_begin` restores the other
    callbacks' counters after they have reset themselves, and its
    `on_epoch_end` commits an epoch only after the others (history row, best
    checkpoint) have handled it. An epoch whose loss is not finite is never
    committed.

    Args:
        backup_dir: the run's backup folder.
        state: `read_backup_state(backup_dir)` when resuming, else None.
        callbacks: the run's other callbacks (those in CALLBACK_STATE are saved).
    """

    def __init__(self, backup_dir, state: dict | None, callbacks: list):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.state = state
        self.stateful = [c for c in callbacks if type(c) in CALLBACK_STATE]

    def on_train_begin(self, logs=None):
        if not self.state:
            return
        for callback, saved in zip(self.stateful, self.state["callbacks"]):
            for name, value in saved.items():
                setattr(callback, name, float(value) if isinstance(value, str) else value)

    def on_epoch_end(self, epoch, logs=None):
        if not all(math.isfinite(float(v)) for k, v in (logs or {}).items() if k.endswith("loss")):
            return
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        weights = f"epoch-{epoch + 1:04d}.weights.h5"
        self._save_weights(weights)
        state = {
            "epoch": epoch + 1,
            # Early stopping has decided (its on_epoch_end ran before this one): a rerun must not go on.
            "stopped": bool(self.model.stop_training),
            "weights": weights,
            "callbacks": [
                {name: _state_value(getattr(c, name)) for name in CALLBACK_STATE[type(c)]}
                for c in self.stateful
            ],
            "seed_generators": [v.numpy().tolist() for v in _seed_generator_states(self.model)],
        }
        records.write_json(self.backup_dir / STATE_FILE, state)  # the commit point
        for old in [*self.backup_dir.glob("epoch-*.weights.h5"), *self.backup_dir.glob("tmp-*")]:
            if old.name != weights:  # earlier epochs, and a write a kill cut short
                old.unlink()

    def _save_weights(self, name: str) -> None:
        # Keras wants the .weights.h5 ending, so the temporary file keeps it.
        tmp = self.backup_dir / f"tmp-{name}"
        self.model.save_weights(str(tmp))
        tmp.replace(self.backup_dir / name)


def _state_value(value):
    if isinstance(value, (int, np.integer)):
        return int(value)
    return _json_number(value)


class LearningRateLog(keras.callbacks.Callback):
    """Puts the learning rate each epoch trained with into its logs (a history.csv column)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.rate


def learning_rate_plateau(config, monitor: str) -> keras.callbacks.Callback | None:
    """The paper's drop-on-plateau schedule (cosine lives in the optimizer, see Task)."""
    train = config.train
    if train.lr_schedule != "plateau":
        return None
    return keras.callbacks.ReduceLROnPlateau(
        monitor=monitor,
        factor=train.lr_factor,
        patience=train.lr_patience,
        min_lr=train.min_learning_rate,
        verbose=0,
    )


class ConfusionMatrixLogger(keras.callbacks.Callback):
    """Writes the validation confusion matrix (AV) as a TensorBoard image every few epochs."""

    def __init__(self, dataset, label_names, log_dir, every=IMAGES_EVERY_EPOCHS, title_prefix=""):
        super().__init__()
        self.title_prefix = title_prefix
        self.dataset = dataset
        self.label_names = list(label_names)
        self.writer = tf.summary.create_file_writer(str(Path(log_dir) / "validation"))
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        predictions = evaluation.predict_split(self.model, self.dataset)
        matrix = evaluation.output_metrics(predictions, "logits", self.label_names)["confusion_matrix"]
        title = f"{self.title_prefix}validation, epoch {epoch + 1}"
        png = confusion_matrix_png(np.array(matrix), self.label_names, title)
        with self.writer.as_default():
            tf.summary.image("confusion_matrix", tf.image.decode_png(png)[None], step=epoch)
        self.writer.flush()


class AttentionLogger(keras.callbacks.Callback):
    """Every few epochs, the last layer's attention (mean over heads) on a few fixed
    validation clips, per modality, as TensorBoard images."""

    def __init__(self, inputs, clip_ids, log_dir, every=IMAGES_EVERY_EPOCHS, title_prefix=""):
        super().__init__()
        self.inputs = inputs
        self.clip_ids = clip_ids
        self.writer = tf.summary.create_file_writer(str(Path(log_dir) / "validation"))
        self.every = every
        self.title_prefix = title_prefix

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        scores = self.model.attention_model()(self.inputs, training=False)
        with self.writer.as_default():
            for modality in self.model.modalities:
                last = max(k for k in scores if k.startswith(f"{modality}_attention_"))
                maps = scores[last].numpy().mean(axis=1)
                title = f"{self.title_prefix}{modality} attention, last layer, epoch {epoch + 1}"
                png = attention_png(maps, self.clip_ids, title)
                tf.summary.image(f"attention/{modality}", tf.image.decode_png(png)[None], step=epoch)
        self.writer.flush()
