"""Keras Tuner search over MATER's hyperparameters, never looking at test subjects.

The hypermodel samples values, writes them into a copy of the experiment
config and calls the same model factory as training, so the best trial is an
ordinary experiment YAML (`best_experiment.yaml`) that `mater-tf cv` accepts.

A trial is scored as `mater-tf cv` selects (`trial_score`): by the validation
loss of the weights cv would keep, the epoch of lowest validation loss (the
best checkpoint) or, where the experiment sets `cv.validation: false`, the
last epoch (cv's last weights); lower is better. The validation subjects are
the fold after `cv.test_fold`, taken from the training folds, even where the
experiment sets `cv.validation: false` (a search needs held-out subjects to
score its trials). The test fold's subjects are excluded from every dataset
the search builds. Trials train as `mater-tf cv` does (the same Task: model,
inputs, losses, optimizer and learning-rate schedule, over tune.epochs).

The best config records the subjects the search trained and validated on
(`tune.searched_subjects`): `mater-tf cv` refuses to test it on any of them.
Only the fold the search held out is an honest test of it; for a tuned
cross-validation figure use nested selection (`cv.nested_tuning: true`,
see cv.py), where every fold runs its own search on its training subjects.

    <tune dir>/config.yaml           resolved config (written first)
    <tune dir>/split.json            subjects of the search's train / validation splits (and the excluded test fold)
    <tune dir>/keras_tuner/          the tuner's own state (an interrupted search continues from it)
    <tune dir>/logs/                 TensorBoard, one folder per trial, with HParams
    <tune dir>/trials.json           every finished trial: values, validation loss and AV accuracy
    <tune dir>/best_experiment.yaml  the best trial as an experiment

Distributed search uses Keras Tuner's own variables: the chief
(`KERASTUNER_TUNER_ID=chief`) serves the oracle at
`KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT`; workers (`tuner0`, `tuner1`, ...)
run trials. All of them share the same tune directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from pathlib import Path

import keras

from mater_tf.config import ExperimentConfig, load_config, validate
from mater_tf.data import records
from mater_tf.errors import UserError
from mater_tf.training.callbacks import learning_rate_plateau
from mater_tf.training.experiment_data import index_for, make_split, resolve_records
from mater_tf.training.rundir import RunDir, write_config
from mater_tf.training.task import Task

log = logging.getLogger(__name__)

# The validation loss, as cv's best checkpoint and learning-rate plateau monitor it (lower is better).
OBJECTIVE = "val_loss"
# Reported beside it: the fused accuracy of the same epoch.
ACCURACY = "val_logits_accuracy"


def _import_keras_tuner():
    try:
        import keras_tuner
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError("tuning needs keras-tuner: pip install 'mater-tf[tune]'") from error
    return keras_tuner


def head_choices(config: ExperimentConfig) -> list[int]:
    """Head counts that divide every d_model the search may pick."""
    widths = config.tune.d_model or [config.model.d_model]
    heads = config.tune.num_heads or [config.model.num_heads]
    valid = [h for h in heads if all(width % h == 0 for width in widths)]
    if not valid:
        raise UserError(
            f"the search space has no valid point: no head count in tune.num_heads={heads} divides every "
            f"d_model in {widths}; pick head counts that divide the widths"
        )
    return valid


def sample_config(hp, config: ExperimentConfig) -> ExperimentConfig:
    """The experiment config with this trial's values written in."""
    tune, model, train = config.tune, config.model, config.train
    changes = {}
    if tune.d_model:
        changes["d_model"] = hp.Choice("d_model", tune.d_model)
    if tune.num_heads:
        changes["num_heads"] = hp.Choice("num_heads", head_choices(config))
    if tune.num_layers:
        changes["num_layers"] = hp.Choice("num_layers", tune.num_layers)
    if tune.ff_dim:
        changes["ff_dim"] = hp.Choice("ff_dim", tune.ff_dim)
    if tune.dropout:
        changes["dropout"] = hp.Choice("dropout", [float(v) for v in tune.dropout])
    learning_rate = train.learning_rate
    if tune.learning_rate:
        low, high = sorted(float(v) for v in tune.learning_rate)
        learning_rate = hp.Float("learning_rate", low, high, sampling="log")
    return validate(
        dataclasses.replace(
            config,
            model=dataclasses.replace(model, **changes),
            train=dataclasses.replace(train, learning_rate=learning_rate),
        )
    )


def trial_score(history: dict, keeps_best_checkpoint: bool) -> dict:
    """A trial's metrics at the epoch whose weights `mater-tf cv` would keep: the lowest
    validation loss (`cv.validation: true`, the best checkpoint) or the last epoch
    (`cv.validation: false`, last weights). Keras Tuner would take each trial's best epoch
    by the objective, an epoch cv may never keep."""
    losses = history[OBJECTIVE]
    epoch = min(range(len(losses)), key=losses.__getitem__) if keeps_best_checkpoint else len(losses) - 1
    return {name: float(values[epoch]) for name, values in history.items() if len(values) == len(losses)}


def build_hypermodel(config: ExperimentConfig, index: records.RecordIndex, make_dataset, split):
    keras_tuner = _import_keras_tuner()
    task = Task(config, index)
    steps = task.steps_per_epoch(split.train)
    validation_steps = task.steps_per_epoch(split.validation)  # as fit_run: every output's loss right
    common = task.input_options()  # as training builds them
    train_data = make_dataset(subjects=split.train, training=True, epochs=(0, config.tune.epochs), **common)
    train_statistics = make_dataset(subjects=split.train, training=False, **common)
    validation_data = make_dataset(subjects=split.validation, training=False, **common)

    class MaterHyperModel(keras_tuner.HyperModel):
        """Samples a config and builds, compiles and fits it exactly as training does."""

        def build(self, hp):
            trial_task = Task(sample_config(hp, config), index)
            model = trial_task.build_model(train_statistics)
            trial_task.compile(model, config.tune.epochs, steps)
            return model

        def fit(self, hp, model, *args, callbacks=(), **kwargs):
            kwargs.pop("validation_data", None)
            callbacks = list(callbacks)
            plateau = learning_rate_plateau(sample_config(hp, config), monitor="val_loss")
            if plateau:
                callbacks.append(plateau)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Your input ran out of data")
                history = model.fit(
                    train_data,
                    validation_data=validation_data,
                    steps_per_epoch=steps,
                    validation_steps=validation_steps,
                    callbacks=callbacks,
                    **kwargs,
                )
            return trial_score(history.history, keeps_best_checkpoint=config.cv.validation)

    return MaterHyperModel(name="mater")


def make_tuner(config: ExperimentConfig, hypermodel, tune_dir: Path):
    keras_tuner = _import_keras_tuner()
    objective = keras_tuner.Objective(OBJECTIVE, direction="min")
    common = dict(
        objective=objective,
        directory=str(tune_dir),
        project_name="keras_tuner",
        overwrite=False,  # an interrupted search continues
        seed=config.tune.seed,
    )
    if config.tune.algorithm == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=config.tune.max_trials, **common)
    if config.tune.algorithm == "bayesian":
        try:  # Keras Tuner would name its own extra; name the one of mater-tf
            import sklearn  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "tune.algorithm=bayesian needs scikit-learn (keras-tuner[bayesian]): pip install 'mater-tf[tune]'"
            ) from error
        return keras_tuner.BayesianOptimization(hypermodel, max_trials=config.tune.max_trials, **common)
    return keras_tuner.Hyperband(hypermodel, max_epochs=config.tune.epochs, factor=3, **common)


def is_worker() -> bool:
    return "KERASTUNER_ORACLE_IP" in os.environ and os.environ.get("KERASTUNER_TUNER_ID") != "chief"


def run_search(config: ExperimentConfig, tune_dir: Path, make_dataset=None) -> dict | None:
    """Runs (or continues) the search; returns the summary (None on a distributed worker).

    `make_dataset` (default `records.make_dataset`) builds every dataset the search reads.
    """
    make_dataset = make_dataset or records.make_dataset
    if config.train.distribution != "none":
        log.warning(
            "train.distribution=%s applies to train and cv; every search trial trains on one device "
            "(spread trials over machines with Keras Tuner's KERASTUNER_* variables)",
            config.train.distribution,
        )
    tune_dir = Path(tune_dir)
    run = RunDir(tune_dir)
    write_config(config, run)
    records_path = resolve_records(config, tune_dir / "data")
    index = index_for(config, records_path)
    split = make_split(dataclasses.replace(config, cv=dataclasses.replace(config.cv, validation=True)), index)
    records.write_json(
        run.split,
        {
            "records": str(records_path),
            "train": list(split.train),
            "validation": list(split.validation),
            "excluded_test_fold": split.test_fold,
            "excluded_test_subjects": list(split.test),
        },
    )
    head_choices(config)  # fail early on an empty space
    keras.utils.set_random_seed(config.train.seed)
    hypermodel = build_hypermodel(config, index, make_dataset, split)
    tuner = make_tuner(config, hypermodel, tune_dir)
    callbacks = [keras.callbacks.TensorBoard(str(tune_dir / "logs"), write_graph=False)]
    if config.train.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.train.early_stopping_patience)
        )
    tuner.search(epochs=config.tune.epochs, callbacks=callbacks, verbose=2)
    if is_worker():
        return None
    return write_results(config, tuner, tune_dir, searched=sorted(split.train + split.validation))


SELECTION = {
    True: "the epoch of lowest validation loss, as cv's best checkpoint",
    False: "the last epoch, as cv's last weights (cv.validation=false)",
}


def write_results(config: ExperimentConfig, tuner, tune_dir: Path, searched: list) -> dict:
    """trials.json and best_experiment.yaml from the oracle's finished trials."""
    trials = []
    for trial in tuner.oracle.trials.values():
        if trial.score is not None:
            accuracy = trial.metrics.get_last_value(ACCURACY) if trial.metrics.exists(ACCURACY) else None
            trials.append(
                {
                    "trial": trial.trial_id,
                    "values": trial.hyperparameters.values,
                    OBJECTIVE: trial.score,
                    ACCURACY: accuracy,
                }
            )
    if not trials:
        raise UserError(f"no trial of the search in {tune_dir} finished; see the log above")
    trials.sort(key=lambda t: t[OBJECTIVE])
    best = tuner.get_best_hyperparameters(1)[0]
    best_config = sample_config(best, config)
    best_config = dataclasses.replace(
        best_config,
        name=f"{config.name}_tuned",
        tune=dataclasses.replace(best_config.tune, searched_subjects=list(searched)),
    )
    header = (
        f"# Best of a Keras Tuner {config.tune.algorithm} search ({len(trials)} trials) over {tune_dir}.\n"
        f"# Objective: the lowest validation loss ({OBJECTIVE} = {trials[0][OBJECTIVE]:.4f}, at the epoch "
        f"cv would keep: {SELECTION[config.cv.validation]}).\n"
        f"# The search trained and validated on {len(searched)} subjects (tune.searched_subjects); only\n"
        f"# test fold {config.cv.test_fold} is unseen by it, so test it there:\n"
        f"#   mater-tf train --experiment {tune_dir / 'best_experiment.yaml'}\n"
        "# mater-tf cv refuses this file (its other folds were the search's data). For a tuned\n"
        "# cross-validation figure, let every fold search on its own training subjects:\n"
        f"#   mater-tf cv --experiment <the experiment you tuned> --set cv.nested_tuning=true\n"
    )
    (tune_dir / "best_experiment.yaml").write_text(header + best_config.to_yaml())
    summary = {
        "algorithm": config.tune.algorithm,
        "objective": OBJECTIVE,
        "direction": "min",
        "epoch_scored": SELECTION[config.cv.validation],
        "best": trials[0],
        "trials": trials,
    }
    records.write_json(tune_dir / "trials.json", summary)
    return summary


def read_best_config(tune_dir: Path) -> ExperimentConfig:
    """The best trial's experiment written by a finished search."""
    return load_config(Path(tune_dir) / "best_experiment.yaml")


def trials_done(tune_dir: Path) -> int:
    """Finished trials recorded in the tuner's folder."""
    count = 0
    for path in (Path(tune_dir) / "keras_tuner").glob("trial_*/trial.json"):
        if json.loads(path.read_text()).get("status") == "COMPLETED":
            count += 1
    return count
