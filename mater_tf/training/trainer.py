"""One training run: a fold's train/validation/test split, fit, evaluate, export.

A run directory holds, in the order they are written:

    config.yaml            the resolved experiment config (written first)
    split.json             records location, label set, subjects of each split
    logs/                  TensorBoard: train/ and validation/ scalars, confusion matrices
    backup/                last finished epoch (deleted when training ends)
    history.csv            one row per epoch
    checkpoints/best.weights.h5   weights of the best validation epoch
    model.keras            the model with the best weights
    metrics.json           test (and validation) metrics: AV, audio, face
    confusion_*.png        test confusion matrices
    export/                SavedModel for serving (+ mater_tf.json)

Running the same command on an unfinished run resumes from its last finished
epoch; a finished run (metrics.json present) is not trained again.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from mater_tf.config import ExperimentConfig
from mater_tf.data import folds, records, schema, synthetic
from mater_tf.errors import UserError
from mater_tf.models import build_model
from mater_tf.reporting.plots import attention_png, confusion_matrix_png
from mater_tf.serving.export import export_saved_model
from mater_tf.training.metrics import classification_metrics

log = logging.getLogger(__name__)

# Model output -> the name used in metrics and reports (paper Table 3: AV, A, V).
OUTPUT_NAMES = {"logits": "av", "audio_logits": "audio", "face_logits": "face"}
CONFUSION_EVERY_EPOCHS = 5


@dataclasses.dataclass(frozen=True)
class RunDir:
    """The files of a run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def backup(self) -> Path:
        return self.root / "backup"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def best_weights(self) -> Path:
        return self.root / "checkpoints" / "best.weights.h5"

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def finished(self) -> bool:
        return self.metrics.is_file()


def resolve_records(config: ExperimentConfig, data_dir: Path) -> Path:
    """The records to train on; the synthetic corpus is written to `data_dir` once."""
    if config.data.source == "synthetic":
        return synthetic.write_corpus(config.data.synthetic, data_dir)
    source = Path(config.data.source).expanduser()
    return source.resolve() if source.exists() else source


def index_for(config: ExperimentConfig, records_path) -> records.RecordIndex:
    """Indexes the records and checks them against the config's expected windowing."""
    index = records.index_records(records_path)
    expected = (config.data.num_windows, config.data.window_seconds)
    if (
        expected[0]
        and index.num_windows != expected[0]
        or expected[1]
        and abs(index.window_seconds - expected[1]) > 1e-6
    ):
        raise UserError(
            f"the records at {records_path} have {index.num_windows} x {index.window_seconds} s windows but the "
            f"experiment expects {expected[0]} x {expected[1]} s; prepare them with --windows {expected[0]} "
            f"--window-seconds {expected[1]} or point data.source at the right folder"
        )
    return index


def write_config(config: ExperimentConfig, run: RunDir) -> None:
    """Writes config.yaml first; refuses a run directory made by another config."""
    if run.config.is_file():
        existing = run.config.read_text(encoding="utf-8")
        if existing != config.to_yaml():
            raise UserError(
                f"{run.root} already holds a run of a different config; pass --run NEW_NAME "
                "or delete that folder"
            )
        return
    records.write_atomically(run.config, lambda tmp: Path(tmp).write_text(config.to_yaml(), encoding="utf-8"))


def make_split(
    index: records.RecordIndex, num_folds: int, test_fold: int, validation: bool = True
) -> folds.FoldSplit:
    return folds.split_for_fold(
        folds.subject_disjoint_folds(index.subject_ids, num_folds), test_fold, validation
    )


def write_split(run: RunDir, records_path: Path, index: records.RecordIndex, split: folds.FoldSplit) -> None:
    payload = {"records": str(records_path), **index.metadata(), **split.to_dict()}
    records.write_json(run.split, payload)


def read_split(run: RunDir) -> dict:
    if not run.split.is_file():
        raise UserError(f"{run.root} has no split.json: training never started there")
    return json.loads(run.split.read_text())


def dataset_options(config: ExperimentConfig, index: records.RecordIndex) -> dict:
    """The input-pipeline arguments every split of this experiment shares."""
    return dict(
        index=index,
        modalities=config.model.modalities,
        batch_size=config.train.batch_size,
        audio_log_mel=config.model.audio_frontend != "none" and "audio" in config.model.modalities,
    )


def make_model(config: ExperimentConfig, index: records.RecordIndex, train_data=None) -> keras.Model:
    """The experiment's model for these records; a VGGish front end gets its weights here,
    and a "band" log-mel normalisation its statistics from `train_data` (the training split)."""
    model = build_model(
        config.model,
        index.audio_dim,
        index.face_dim,
        index.num_classes,
        index.num_windows,
        index.log_mel_frames,
    )
    if model.audio_frontend != "none" and "audio" in model.modalities:
        frontend = model.get_layer("audio_frontend").frontend
        if config.model.audio_frontend_weights:
            from mater_tf.features.vggish import CONV_LAYERS, build_vggish, load_vggish_weights

            source = config.model.audio_frontend_weights
            if source.endswith(".weights.h5"):  # made by mater-tf weights convert-vggish
                converted = build_vggish("conv4_2")
                converted.load_weights(source)
                source = {
                    f"{scope}/{kind}": value
                    for layer, scope in CONV_LAYERS.items()
                    for kind, value in zip(("weights", "biases"), converted.get_layer(layer).get_weights())
                }
            load_vggish_weights(frontend, source)
        frontend.trainable = config.model.audio_frontend_trainable
        if train_data is not None:
            model.get_layer("audio_frontend").adapt(
                train_data.map(
                    lambda inputs, *_: tf.boolean_mask(
                        inputs[schema.LOG_MEL_INPUT], inputs[schema.MODEL_INPUTS["audio"][1]] > 0
                    )
                )
            )
    return model


def compile_model(model: keras.Model, config: ExperimentConfig) -> None:
    """Adam + cross-entropy on the fused logits (paper section 3.1).

    `train.modality_loss_weight` > 0 adds each modality's own loss.
    """
    loss = {}
    weights = {}
    metrics = {}
    for key in ["logits"] + [f"{m}_logits" for m in model.modalities]:
        loss[key] = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        weights[key] = 1.0 if key == "logits" else config.train.modality_loss_weight
        metrics[key] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.train.learning_rate),
        loss=loss,
        loss_weights=weights,
        metrics=metrics,
    )


def predict_dataset(model: keras.Model, dataset: tf.data.Dataset) -> dict:
    """Runs the model over a dataset made `with_context`; returns numpy arrays."""
    collected: dict = {"label": [], "subject": [], "clip_id": []}
    for inputs, _, context in dataset:
        outputs = model(inputs, training=False)
        for key, value in outputs.items():
            collected.setdefault(key, []).append(value.numpy())
        for key in ("label", "subject", "clip_id"):
            collected[key].append(context[key].numpy())
    return {key: np.concatenate(values) if values else np.zeros((0,)) for key, values in collected.items()}


def split_metrics(predictions: dict, label_names) -> dict:
    """Metrics of every output (av, audio, face) from `predict_dataset` arrays."""
    return {
        OUTPUT_NAMES[key]: classification_metrics(
            predictions["label"], predictions[key].argmax(-1), label_names
        )
        for key in OUTPUT_NAMES
        if key in predictions
    }


class ConfusionMatrixLogger(keras.callbacks.Callback):
    """Writes the validation confusion matrix (AV) as a TensorBoard image."""

    def __init__(self, dataset, label_names, log_dir, every=CONFUSION_EVERY_EPOCHS, title_prefix=""):
        super().__init__()
        self.title_prefix = title_prefix
        self.dataset = dataset
        self.label_names = list(label_names)
        self.writer = tf.summary.create_file_writer(str(Path(log_dir) / "validation"))
        self.every = every

    def log(self, epoch):
        predictions = predict_dataset(self.model, self.dataset)
        matrix = classification_metrics(
            predictions["label"], predictions["logits"].argmax(-1), self.label_names
        )["confusion_matrix"]
        title = f"{self.title_prefix}validation, epoch {epoch + 1}"
        png = confusion_matrix_png(np.array(matrix), self.label_names, title)
        with self.writer.as_default():
            tf.summary.image("confusion_matrix", tf.image.decode_png(png)[None], step=epoch)
        self.writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self.log(epoch)


class AttentionLogger(keras.callbacks.Callback):
    """Every few epochs, the last layer's attention (mean over heads) on a few fixed
    validation clips, per modality, as TensorBoard images."""

    def __init__(self, inputs, clip_ids, log_dir, every=CONFUSION_EVERY_EPOCHS, title_prefix=""):
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


def hyperparameters(config: ExperimentConfig, index: records.RecordIndex) -> dict:
    """The run's knobs for TensorBoard's HParams dashboard (scalars and strings only)."""
    values = {f"model.{k}": v for k, v in dataclasses.asdict(config.model).items()}
    values["model.modalities"] = ",".join(config.model.modalities)
    values.update({f"train.{k}": v for k, v in dataclasses.asdict(config.train).items()})
    values.update(experiment=config.name, windows=index.num_windows, window_seconds=index.window_seconds)
    return values


def _data_prefix(index: records.RecordIndex) -> str:
    """Figure titles say when the data is synthetic."""
    return "SYNTHETIC data: " if index.corpus == synthetic.CORPUS else ""


def _best_validation_loss(history_path: Path) -> float | None:
    """The best val_loss of epochs already done (so a resumed run keeps its best)."""
    if not history_path.is_file():
        return None
    with history_path.open() as handle:
        # Keras' CSVLogger writes val_ columns as "NA" when there is no validation split.
        losses = [
            float(row["val_loss"])
            for row in csv.DictReader(handle)
            if row.get("val_loss") not in (None, "", "NA")
        ]
    return min(losses) if losses else None


def _trim_history_to_backup(run: RunDir) -> None:
    """Drops history rows of epochs after the last backup (they will run again)."""
    metadata = run.backup / "training_metadata.json"
    if not run.history.is_file():
        return
    done = json.loads(metadata.read_text()).get("epoch", 0) if metadata.is_file() else 0
    with run.history.open() as handle:
        rows = list(csv.reader(handle))
    kept = rows[:1] + [row for row in rows[1:] if row and int(row[0]) < done]
    if len(kept) != len(rows):

        def write(tmp):
            with open(tmp, "w", newline="") as handle:
                csv.writer(handle).writerows(kept)

        records.write_atomically(run.history, write)


def learning_rate_callback(config: ExperimentConfig, monitor: str) -> keras.callbacks.Callback:
    """The paper's drop-on-plateau schedule, or a cosine decay to 0 over train.epochs.

    Both are functions of the epoch and the logged losses only, so a resumed run
    continues on the same schedule.
    """
    train = config.train
    if train.lr_schedule == "cosine":
        return keras.callbacks.LearningRateScheduler(
            lambda epoch: float(train.learning_rate * 0.5 * (1.0 + np.cos(np.pi * epoch / train.epochs)))
        )
    return keras.callbacks.ReduceLROnPlateau(
        monitor=monitor, factor=train.lr_factor, patience=train.lr_patience, min_lr=train.min_learning_rate
    )


def validation_callbacks(config, run: RunDir, index: records.RecordIndex, validation_with_context) -> list:
    """Best-checkpoint choice, early stopping and the TensorBoard images of the validation subjects."""
    every = min(CONFUSION_EVERY_EPOCHS, config.train.epochs)  # short runs still get their images
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            str(run.best_weights),
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=_best_validation_loss(run.history),
        ),
        ConfusionMatrixLogger(
            validation_with_context, index.label_names, run.logs, every, title_prefix=_data_prefix(index)
        ),
    ]
    if config.model.attention and config.model.encoder == "transformer":
        sample_inputs, _, sample_context = next(iter(validation_with_context.unbatch().batch(3)))
        clip_ids = [c.decode() for c in sample_context["clip_id"].numpy()]
        callbacks.append(
            AttentionLogger(sample_inputs, clip_ids, run.logs, every, title_prefix=_data_prefix(index))
        )
    if config.train.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.train.early_stopping_patience)
        )
    return callbacks


def fit_run(
    config: ExperimentConfig,
    run: RunDir,
    records_path: Path,
    index: records.RecordIndex,
    split: folds.FoldSplit,
    export: bool = True,
) -> dict:
    """Trains on `split.train`, selects on `split.validation` (if any), reports on `split.test`.

    Returns the metrics written to metrics.json.
    """
    if run.finished:
        log.info("%s is finished; not training again", run.root)
        return json.loads(run.metrics.read_text())
    write_split(run, records_path, index, split)
    keras.utils.set_random_seed(config.train.seed)
    tf.config.experimental.enable_op_determinism()
    common = dict(dataset_options(config, index), seed=config.train.seed)
    train_data = records.make_dataset(
        subjects=split.train, training=True, shuffle_buffer=config.data.shuffle_buffer, **common
    )
    validation_data = validation_with_context = None
    if split.validation:
        validation_data = records.make_dataset(subjects=split.validation, training=False, **common)
        validation_with_context = records.make_dataset(
            subjects=split.validation, training=False, with_context=True, **common
        )

    model = make_model(config, index, train_data)
    compile_model(model, config)
    run.best_weights.parent.mkdir(parents=True, exist_ok=True)
    _trim_history_to_backup(run)
    callbacks = [
        # First, so the epoch's learning rate is in the logs the history row takes.
        learning_rate_callback(config, monitor="val_loss" if split.validation else "loss"),
        # The history row is written before the backup, and a resumed run first
        # drops rows past the backup's epoch, so a kill at any moment leaves
        # exactly one row per finished epoch.
        keras.callbacks.CSVLogger(str(run.history), append=True),
        keras.callbacks.BackupAndRestore(str(run.backup), delete_checkpoint=True),
        keras.callbacks.TensorBoard(str(run.logs), write_graph=False),
    ]
    if split.validation:
        callbacks += validation_callbacks(config, run, index, validation_with_context)
    with tf.summary.create_file_writer(str(run.logs)).as_default():
        hparams_api.hparams(hyperparameters(config, index), trial_id=run.root.name)
    started = time.time()
    # The splits are filtered by subject, so their length is unknown until the
    # first epoch ends; Keras then warns once that the input "ran out of data".
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=config.train.epochs,
        callbacks=callbacks,
        shuffle=False,  # the training split is shuffled by the input pipeline
        verbose=1 if sys.stdout.isatty() else 2,
    )
    train_seconds = time.time() - started
    if run.best_weights.is_file():
        model.load_weights(str(run.best_weights))
    model.save(str(run.model))
    metrics = evaluate_model(model, config, run, index, split)
    metrics["training"] = {
        "epochs_run_this_session": len(history.history.get("loss", [])),
        "seconds_this_session": round(train_seconds, 1),
        "best_validation_loss": _best_validation_loss(run.history),
        "weights": "best validation loss" if run.best_weights.is_file() else "last epoch",
    }
    with tf.summary.create_file_writer(str(run.logs)).as_default():
        for split_name in ("test", "validation") if split.validation else ("test",):
            tf.summary.scalar(
                f"hparams/{split_name}_av_accuracy", metrics[split_name]["av"]["accuracy"], step=0
            )
    if export:
        export_saved_model(
            model, run.export, index.label_names, export_metadata(config, index.metadata(), records_path)
        )
    records.write_json(run.metrics, metrics)
    return metrics


def export_metadata(config: ExperimentConfig, records_metadata: dict, records_path=None) -> dict:
    """What predict needs to prepare a new clip like the training records.

    The prepare manifest beside the records (when there is one) gives the
    embedders' specs and weights' checksums.
    """
    metadata = {
        **records_metadata,
        "modalities": list(config.model.modalities),
        "audio_frontend": config.model.audio_frontend,
        "experiment": config.name,
    }
    manifest = Path(records_path or "") / "manifest.json"
    if records_path and manifest.is_file():
        metadata["embedders"] = json.loads(manifest.read_text()).get("embedders")
    return metadata


def evaluate_model(
    model: keras.Model,
    config: ExperimentConfig,
    run: RunDir,
    index: records.RecordIndex,
    split: folds.FoldSplit,
) -> dict:
    """Metrics of the test and validation splits; test confusion matrices as PNG and TensorBoard images."""
    common = dict(dataset_options(config, index), training=False, with_context=True)
    test = predict_dataset(model, records.make_dataset(subjects=split.test, **common))
    metrics = {
        "experiment": config.name,
        "corpus": index.corpus,
        "synthetic": index.corpus == synthetic.CORPUS,
        "label_names": list(index.label_names),
        "test_fold": split.test_fold,
        "test_subjects": list(split.test),
        "validation_subjects": list(split.validation),
        "test": split_metrics(test, index.label_names),
    }
    if split.validation:
        validation = predict_dataset(model, records.make_dataset(subjects=split.validation, **common))
        metrics["validation"] = split_metrics(validation, index.label_names)
    writer = tf.summary.create_file_writer(str(run.logs / "test"))
    for name, values in metrics["test"].items():
        title = (
            f"{_data_prefix(index)}test fold {split.test_fold}, {name.upper()}, acc {values['accuracy']:.3f}"
        )
        png = confusion_matrix_png(np.array(values["confusion_matrix"]), index.label_names, title)
        (run.root / f"confusion_{name}.png").write_bytes(png)
        with writer.as_default():
            tf.summary.image(f"confusion_matrix/{name}", tf.image.decode_png(png)[None], step=0)
            tf.summary.scalar(f"accuracy/{name}", values["accuracy"], step=0)
    writer.flush()
    return metrics
