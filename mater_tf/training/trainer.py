"""The fit loop of one run: a fold's train/validation/test split, fit, evaluate, export.

The pieces come from elsewhere: the model, inputs, losses and optimizer from
`task.Task`, the files from `rundir.RunDir`, the callbacks from
`callbacks`, the metrics from `evaluation`. Running the same command on an
unfinished run resumes it exactly where its last finished epoch ended (same
weights, optimizer, callback counters, random streams and data order), so it
ends with the history, weights and metrics.json of a run never interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import sys
import time
import warnings
from pathlib import Path

import keras
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from mater_tf.config import ExperimentConfig
from mater_tf.data import folds, records, synthetic
from mater_tf.errors import UserError
from mater_tf.serving.export import export_saved_model
from mater_tf.training import callbacks as run_callbacks
from mater_tf.training import distribution, evaluation
from mater_tf.training.rundir import RunDir, best_validation_loss, history_rows, trim_history, write_split
from mater_tf.training.task import Task

log = logging.getLogger(__name__)


def data_prefix(index: records.RecordIndex) -> str:
    """Figure titles say when the data is synthetic."""
    return "SYNTHETIC data: " if index.corpus == synthetic.CORPUS else ""


def hyperparameters(config: ExperimentConfig, index: records.RecordIndex) -> dict:
    """The run's knobs for TensorBoard's HParams dashboard (scalars and strings only)."""
    values = {f"model.{k}": v for k, v in dataclasses.asdict(config.model).items()}
    # Lists as comma-separated strings: runs that differ only in one must not look alike.
    values.update({k: ",".join(map(str, v)) for k, v in values.items() if isinstance(v, list)})
    values.update({f"model.augment.{k}": v for k, v in dataclasses.asdict(config.model.augment).items()})
    values.update({f"train.{k}": v for k, v in dataclasses.asdict(config.train).items()})
    values.update(experiment=config.name, windows=index.num_windows, window_seconds=index.window_seconds)
    return {k: v for k, v in values.items() if isinstance(v, (bool, int, float, str))}


def build_callbacks(task: Task, run: RunDir, split: folds.FoldSplit, state: dict | None) -> list:
    """The run's callbacks, in the order Keras must call them (see RunBackup)."""
    config, index = task.config, task.index
    callbacks = [keras.callbacks.TerminateOnNaN()]
    plateau = run_callbacks.learning_rate_plateau(config, monitor="val_loss" if split.validation else "loss")
    if plateau:
        callbacks.append(plateau)
    # After the plateau (which logs the rate it sets for the next epoch): the rate this epoch used.
    callbacks.append(run_callbacks.LearningRateLog())
    if split.validation:
        every = min(run_callbacks.IMAGES_EVERY_EPOCHS, config.train.epochs)  # short runs get images too
        validation = task.build_inputs(split.validation, with_context=True)
        callbacks += [
            keras.callbacks.ModelCheckpoint(
                str(run.best_weights), monitor="val_loss", save_best_only=True, save_weights_only=True
            ),
            run_callbacks.ConfusionMatrixLogger(
                validation, index.label_names, run.logs, every, title_prefix=data_prefix(index)
            ),
        ]
        if config.model.attention and config.model.encoder == "transformer" and config.model.num_layers:
            sample_inputs, _, sample_context = next(iter(validation.unbatch().batch(3)))
            clip_ids = [c.decode() for c in sample_context["clip_id"].numpy()]
            callbacks.append(
                run_callbacks.AttentionLogger(
                    sample_inputs, clip_ids, run.logs, every, title_prefix=data_prefix(index)
                )
            )
        if config.train.early_stopping_patience:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=config.train.early_stopping_patience
                )
            )
    callbacks += [
        keras.callbacks.TensorBoard(str(run.logs), write_graph=False),
        # The history row of an epoch is written before its backup, and a resumed run
        # first drops rows past the backup's epoch: exactly one row per finished epoch.
        keras.callbacks.CSVLogger(str(run.history), append=True),
    ]
    callbacks.append(run_callbacks.RunBackup(run.backup, state, callbacks))
    return callbacks


def fit_run(
    config: ExperimentConfig,
    run: RunDir,
    records_path: Path,
    index: records.RecordIndex,
    split: folds.FoldSplit,
    export: bool = True,
    resume_from: RunDir | None = None,
) -> dict:
    """Trains on `split.train`, selects on `split.validation` (if any), reports on `split.test`.

    With `train.distribution` set, training runs under its strategy; the
    `distribution.Distribution` of the run holds every difference, and evaluation,
    the saved model and the export are the same as without. `resume_from` is the
    run directory whose state (finished, backup) this run continues from, when it
    is not `run` itself: a worker that is not the chief writes `run` to a temporary
    folder and continues the chief's run.

    Returns the metrics written to metrics.json.

    Raises:
        UserError: when the training loss stops being finite (nothing is saved or exported).
    """
    source = resume_from or run
    distributed = distribution.for_config(config)
    state = None if source.finished else run_callbacks.read_backup_state(source.backup)
    distributed.check_workers_agree(source.finished, state["epoch"] if state else 0, source.root)
    if source.finished:
        log.info("%s is finished; not training again", source.root)
        return json.loads(source.metrics.read_text())
    write_split(run, records_path, index, split)
    keras.utils.set_random_seed(config.train.seed)
    task = Task(config, index)
    set_op_determinism(task)
    epochs = config.train.epochs
    steps = task.steps_per_epoch(split.train)
    start = state["epoch"] if state else 0
    if state and state.get("stopped"):  # killed after early stopping ended it: nothing left to train
        start = epochs
    with distributed.scope():
        model = task.build_model(task.build_inputs(split.train))
        task.compile(model, epochs, steps)
        if state:
            run_callbacks.restore_weights(model, source.backup, state)
    if state:
        announce_resume(source, state, start, epochs)
        if source is not run:
            copy_resumed_files(source, run)
    trim_history(run, state["epoch"] if state else 0)
    run.best_weights.parent.mkdir(parents=True, exist_ok=True)
    callbacks = build_callbacks(task, run, split, state)
    if not state:
        with tf.summary.create_file_writer(str(run.logs)).as_default():
            hparams_api.hparams(hyperparameters(config, index), trial_id=run.root.name)
    started = time.time()
    history = None
    if start < epochs:
        with warnings.catch_warnings():
            # The training dataset holds exactly the remaining epochs; Keras warns at its end.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            history = distributed.fit(
                model,
                task.build_inputs(split.train, training=True, epochs=(start, epochs)),
                task.build_inputs(split.validation) if split.validation else None,
                epochs=epochs,
                initial_epoch=start,
                steps_per_epoch=steps,
                # Without it Keras reads one step past the end of the (unknown-length) validation
                # data, which adds a batch to each output's own loss count but nothing to its total:
                # val_logits_loss would read val_loss x n/(n+1) (Keras 3.15; see
                # `multi_worker_fit.fit_across_workers`, which runs these steps too).
                validation_steps=task.steps_per_epoch(split.validation) if split.validation else None,
                callbacks=callbacks,
                verbose=1 if sys.stdout.isatty() else 2,
            )
    model = distributed.single_device_model(task, model, epochs, steps)
    check_finite(history, run)
    rows = history_rows(run)
    stopped_early = len(rows) < epochs
    if stopped_early:
        print(
            f"early stopping ended training after epoch {len(rows)} of {epochs}: no validation-loss gain "
            f"in {config.train.early_stopping_patience} epochs",
            flush=True,
        )
    if run.best_weights.is_file():
        model.load_weights(str(run.best_weights))
    model.save(str(run.model))
    metrics = evaluation.evaluate(model, task, split, data_prefix(index))
    metrics["training"] = {
        "epochs": len(rows),
        "stopped_early": stopped_early,
        "best_validation_loss": best_validation_loss(run),
        "weights": "best validation loss" if run.best_weights.is_file() else "last epoch",
    }
    evaluation.write_test_figures(metrics, index.label_names, run.root, run.logs, data_prefix(index))
    if split.validation and metrics["validation"]["av"]["accuracy"] is not None:
        with tf.summary.create_file_writer(str(run.logs / "validation")).as_default():
            tf.summary.scalar(
                "hparams/validation_av_accuracy", metrics["validation"]["av"]["accuracy"], step=0
            )
    if export:
        export_saved_model(
            model, run.export, index.label_names, export_metadata(config, index.metadata(), records_path)
        )
    write_timing(run, start, time.time() - started)
    records.write_json(run.metrics, metrics)
    shutil.rmtree(run.backup, ignore_errors=True)
    return metrics


def set_op_determinism(task: Task) -> None:
    """Deterministic ops, unless the training step is XLA-compiled (which they would switch off)."""
    if task.jit_compile:
        # Keras silently drops XLA while op determinism is on (an earlier run in this process may
        # have turned it on); TensorFlow has no public switch to turn it off again.
        from tensorflow.python.framework import config as tf_framework_config

        tf_framework_config.disable_op_determinism()
    else:
        tf.config.experimental.enable_op_determinism()


def announce_resume(source: RunDir, state: dict, start: int, epochs: int) -> None:
    """Says where a resumed run continues."""
    if start < epochs:
        print(f"resuming {source.root} from epoch {start + 1} of {epochs} ({start} finished)", flush=True)
    else:
        print(f"resuming {source.root}: training ended after epoch {state['epoch']}; evaluating", flush=True)


def copy_resumed_files(source: RunDir, run: RunDir) -> None:
    """Copies into `run` what the run it resumes (the chief's) wrote before: history, best weights."""
    for path in ("history", "best_weights"):
        if getattr(source, path).is_file():
            getattr(run, path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(getattr(source, path), getattr(run, path))


def check_finite(history, run: RunDir) -> None:
    """Stops a run whose training loss became NaN or infinite, with nothing saved or exported."""
    losses = (history.history.get("loss", []) if history else []) or [0.0]
    if math.isfinite(losses[-1]):
        return
    epoch = history.epoch[-1] + 1
    raise UserError(
        f"the training loss became {losses[-1]} in epoch {epoch}; training stopped and nothing was exported "
        f"(the last finite epoch is backed up in {run.backup}). Lower train.learning_rate, or check the "
        "records for extreme values, then run the same command to continue or --restart"
    )


def write_timing(run: RunDir, first_epoch: int, seconds: float) -> None:
    """timing.json: each session's epochs and seconds (kept out of metrics.json, which a
    resumed run must reproduce exactly)."""
    sessions = json.loads(run.timing.read_text()) if run.timing.is_file() else []
    sessions.append({"first_epoch": first_epoch + 1, "seconds": round(seconds, 1)})
    records.write_json(run.timing, sessions)


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
    manifest = Path(records_path or "") / records.MANIFEST_FILE
    if records_path and manifest.is_file():
        metadata["embedders"] = json.loads(manifest.read_text()).get("embedders")
    return metadata
