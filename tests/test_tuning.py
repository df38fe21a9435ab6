"""Keras Tuner search: never sees test subjects, resumes after a kill, runs distributed on loopback."""

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import pytest

from mater_tf.config import load_config
from mater_tf.data import records
from mater_tf.errors import UserError
from mater_tf.training import tuning

TUNE = ["tune.max_trials=2", "tune.epochs=1", "tune.num_heads=[1,2]", "tune.learning_rate=[1e-3,1e-2]"]


@pytest.fixture(scope="module")
def search(tiny_overrides, tmp_path_factory):
    """One small search, run once and inspected by several tests: a Bayesian search (its second
    trial proposed by the Gaussian process) over a two-member ensemble, recording every dataset it
    builds and every Gaussian-process fit. Returns (summary, tune_dir, subjects requested, fits)."""
    import keras_tuner
    from sklearn.gaussian_process import GaussianProcessRegressor

    tune_dir = tmp_path_factory.mktemp("search")
    requested, fits = [], []
    original_fit = GaussianProcessRegressor.fit

    def counting_fit(self, *args, **kwargs):
        fits.append(len(args[0]))
        return original_fit(self, *args, **kwargs)

    def recording(subjects, **kwargs):
        requested.append(set(subjects))
        return records.make_dataset(subjects=subjects, **kwargs)

    overrides = [*tiny_overrides, *TUNE, "tune.algorithm=bayesian", "model.ensemble=2"]
    with pytest.MonkeyPatch.context() as patch:
        # One random start, so the second trial is proposed by the Gaussian process (scikit-learn).
        patch.setattr(
            keras_tuner,
            "BayesianOptimization",
            functools.partial(keras_tuner.BayesianOptimization, num_initial_points=1),
        )
        patch.setattr(GaussianProcessRegressor, "fit", counting_fit)
        summary = tuning.run_search(load_config("quickstart", overrides), tune_dir, make_dataset=recording)
    return summary, tune_dir, requested, fits


def test_the_search_never_sees_a_test_subject(search):
    summary, tune_dir, requested, _ = search
    split = json.loads((tune_dir / "split.json").read_text())
    test_subjects = set(split["excluded_test_subjects"])
    assert test_subjects == {"s000", "s001"}
    assert requested and all(not subjects & test_subjects for subjects in requested)
    assert set().union(*requested) == set(split["train"]) | set(split["validation"])
    assert len(summary["trials"]) == 2
    # The lowest validation loss wins, as cv's best checkpoint (cv.validation defaults to true).
    assert summary["objective"] == "val_loss" and summary["direction"] == "min"
    assert summary["best"] == min(summary["trials"], key=lambda t: t["val_loss"])
    assert "lowest validation loss" in summary["epoch_scored"]
    best = load_config(tune_dir / "best_experiment.yaml")  # an ordinary experiment
    assert best.name == "quickstart_tuned"
    assert best.tune.searched_subjects == sorted(set(split["train"]) | set(split["validation"]))
    assert best.model.num_heads == summary["best"]["values"]["num_heads"]
    assert best.train.learning_rate == pytest.approx(summary["best"]["values"]["learning_rate"])
    assert (tune_dir / "logs").is_dir()


def test_an_ensemble_is_searched_like_one_network(search):
    """The tuner's datasets carry every member's targets, as training's do."""
    summary, tune_dir, _, _ = search
    assert summary["best"][tuning.OBJECTIVE] > 0.0
    assert 0.0 <= summary["best"][tuning.ACCURACY] <= 1.0
    assert load_config(tune_dir / "best_experiment.yaml").model.ensemble == 2


def test_a_trial_is_scored_at_the_epoch_whose_weights_cv_keeps():
    history = {
        "val_loss": [0.9, 0.5, 0.7],
        "val_logits_accuracy": [0.3, 0.4, 0.6],  # its best epoch (0.6) is one cv never keeps
        "loss": [1.0, 0.8, 0.6],
    }
    assert tuning.trial_score(history, keeps_best_checkpoint=True) == {
        "val_loss": 0.5,
        "val_logits_accuracy": 0.4,
        "loss": 0.8,
    }
    last = tuning.trial_score(history, keeps_best_checkpoint=False)  # cv.validation=false: last weights
    assert last == {"val_loss": 0.7, "val_logits_accuracy": 0.6, "loss": 0.6}


def test_a_bayesian_search_fits_its_gaussian_process(search):
    summary, tune_dir, _, fits = search
    assert summary["algorithm"] == "bayesian" and len(summary["trials"]) == 2
    assert fits and fits[0] == 1  # fitted on the first finished trial to propose the second
    oracle = json.loads((tune_dir / "keras_tuner" / "oracle.json").read_text())
    assert oracle["num_initial_points"] == 1  # the Bayesian oracle's state, not a random search's
    for trial in summary["trials"]:
        assert trial["values"]["num_heads"] in (1, 2)
        assert 1e-3 <= trial["values"]["learning_rate"] <= 1e-2
    assert (tune_dir / "best_experiment.yaml").is_file()


def test_a_bayesian_search_without_scikit_learn_names_the_extra(
    tiny_overrides, tmp_path, monkeypatch, capsys, cli_command
):
    from mater_tf.cli.main import main

    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    overrides = list(tiny_overrides) + TUNE + ["tune.algorithm=bayesian"]
    assert main(cli_command("tune", tmp_path, "b", overrides)) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert "Traceback" not in captured.err and len(lines) == 1, captured.err
    assert "tune.algorithm=bayesian needs scikit-learn" in lines[0]
    assert "pip install 'mater-tf[tune]'" in lines[0]


def test_a_tuned_config_is_tested_only_where_its_search_never_looked(tiny_overrides, tmp_path, capsys):
    from mater_tf.cli.main import main
    from mater_tf.data import folds
    from mater_tf.training.cv import check_not_tuned_on_test

    searched = ["s002", "s003", "s004", "s005"]  # a search that held out fold 0 (s000, s001)
    overrides = list(tiny_overrides) + [f"tune.searched_subjects=[{','.join(searched)}]"]
    config = load_config("quickstart", overrides)
    fold_list = folds.subject_disjoint_folds([f"s{i:03d}" for i in range(6)], 3)
    check_not_tuned_on_test(config, folds.split_for_fold(fold_list, 0))  # the held-out fold: fine
    with pytest.raises(UserError, match="s002, s003, which test fold 1 tests on.*cv.nested_tuning=true"):
        check_not_tuned_on_test(config, folds.split_for_fold(fold_list, 1))
    argv = ["cv", "--workdir", str(tmp_path), "--run", "c"] + [a for o in overrides for a in ("--set", o)]
    assert main(argv) == 2
    assert "nested" in capsys.readouterr().err
    assert not list((tmp_path / "quickstart" / "c").glob("fold_*"))  # refused before any training


def test_trials_train_on_the_schedule_cv_uses(tiny_overrides, tmp_path):
    import keras_tuner

    from mater_tf.training.experiment_data import index_for, make_split, resolve_records
    from mater_tf.training.task import Task

    config = load_config("quickstart", list(tiny_overrides) + TUNE + ["train.lr_schedule=cosine"])
    index = index_for(config, resolve_records(config, tmp_path / "data"))
    split = make_split(config, index)
    model = tuning.build_hypermodel(config, index, records.make_dataset, split).build(
        keras_tuner.HyperParameters()
    )
    schedule = model.optimizer._learning_rate
    steps = Task(config, index).steps_per_epoch(split.train)
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert (
        schedule.decay_steps == config.tune.epochs * steps
    )  # decays to 0 over the trial, as cv over its epochs


@pytest.mark.slow
def test_nested_tuning_never_shows_a_fold_search_that_folds_test_subjects(
    tiny_overrides, tmp_path, monkeypatch, cli_command
):
    from mater_tf.cli.main import main

    seen = {}
    searching = []
    original_search, original_dataset = tuning.run_search, records.make_dataset

    def search(config, tune_dir, *args, **kwargs):
        searching.append(config.cv.test_fold)
        try:
            return original_search(config, tune_dir, *args, **kwargs)
        finally:
            searching.pop()

    def dataset(*args, subjects, **kwargs):
        if searching:
            seen.setdefault(searching[-1], set()).update(subjects)
        return original_dataset(*args, subjects=subjects, **kwargs)

    monkeypatch.setattr(tuning, "run_search", search)
    monkeypatch.setattr(records, "make_dataset", dataset)
    overrides = list(tiny_overrides) + TUNE + ["cv.nested_tuning=true", "train.epochs=1", "tune.max_trials=1"]
    assert main(cli_command("cv", tmp_path, "n", overrides)) == 0
    cv_dir = tmp_path / "quickstart" / "n"
    assignment = json.loads((cv_dir / "folds.json").read_text())
    assert assignment["nested_tuning"] is True
    for fold in assignment["folds"]:
        k = fold["fold"]
        metrics = json.loads((cv_dir / f"fold_{k:02d}" / "metrics.json").read_text())
        assert metrics["test_subjects"] == fold["subjects"]  # every fold is reported ...
        assert seen[k] and not seen[k] & set(
            fold["subjects"]
        )  # ... and its search never saw its test subjects
        assert seen[k] == {
            s for other in assignment["folds"] if other["fold"] != k for s in other["subjects"]
        }
        tuned = load_config(cv_dir / f"fold_{k:02d}" / "config.yaml")
        assert tuned.name == "quickstart_tuned" and not set(tuned.tune.searched_subjects) & set(
            fold["subjects"]
        )
    assert "Nested selection" in (cv_dir / "report.md").read_text()


def test_a_search_space_without_a_valid_point(tiny_overrides, tmp_path):
    config = load_config("quickstart", list(tiny_overrides) + ["tune.num_heads=[3,5]"])  # d_model 8
    with pytest.raises(UserError, match="no valid point"):
        tuning.run_search(config, tmp_path)


def _search_overrides(tiny_overrides, trials):
    return list(tiny_overrides) + [f"tune.max_trials={trials}", "tune.epochs=1", "tune.num_heads=[1,2]"]


@pytest.mark.slow
def test_an_interrupted_search_continues(tiny_overrides, tmp_path, cli_command):
    from mater_tf.cli.main import main

    command = cli_command("tune", tmp_path, "t", _search_overrides(tiny_overrides, trials=2))
    tune_dir = tmp_path / "quickstart" / "t"
    process = subprocess.Popen(
        [sys.executable, "-m", "mater_tf.cli.main", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None and tuning.trials_done(tune_dir) < 1:
        time.sleep(0.1)
    assert process.poll() is None, "the search finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = tune_dir / "keras_tuner" / "trial_0" / "trial.json"
    stamp = first.stat().st_mtime_ns
    assert main(command) == 0
    assert tuning.trials_done(tune_dir) == 2
    assert first.stat().st_mtime_ns == stamp  # the finished trial was not run again
    assert len(json.loads((tune_dir / "trials.json").read_text())["trials"]) == 2


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_distributed_search_with_a_chief_and_a_worker_on_loopback(tiny_overrides, tmp_path, cli_command):
    search = cli_command("tune", tmp_path, "t", _search_overrides(tiny_overrides, trials=2))
    command = [sys.executable, "-m", "mater_tf.cli.main", *search]
    port = str(_free_port())
    base = dict(os.environ, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=port)
    chief = subprocess.Popen(
        command,
        env=dict(base, KERASTUNER_TUNER_ID="chief"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    time.sleep(3)  # let the chief bind its port
    worker = subprocess.run(
        command,
        env=dict(base, KERASTUNER_TUNER_ID="tuner0"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert worker.returncode == 0, worker.stdout[-2000:] + worker.stderr[-2000:]
    assert "worker done" in worker.stdout
    output, _ = chief.communicate(timeout=120)
    assert chief.returncode == 0, output[-3000:]
    tune_dir = tmp_path / "quickstart" / "t"
    summary = json.loads((tune_dir / "trials.json").read_text())
    assert len(summary["trials"]) == 2
    assert (tune_dir / "best_experiment.yaml").is_file()
