"""Training runs, determinism, resume after a kill, cross-validation, metrics."""

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from unittest import mock

import keras
import numpy as np
import pytest

from mater_tf.cli.common import format_accuracy_table
from mater_tf.cli.main import main
from mater_tf.errors import UserError
from mater_tf.training import cv, experiment_data, task, trainer
from mater_tf.training.metrics import classification_metrics


def test_classification_metrics_by_hand():
    labels = np.array([0, 0, 0, 1, 2, 2])
    predictions = np.array([0, 1, 0, 1, 2, 0])
    metrics = classification_metrics(labels, predictions, ["a", "b", "c", "d"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["unweighted_accuracy"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)  # d has no clips
    assert metrics["per_class_accuracy"] == {"a": pytest.approx(2 / 3), "b": 1.0, "c": 0.5, "d": None}
    assert metrics["confusion_matrix"][0] == [2, 1, 0, 0]
    assert metrics["confusion_matrix"][2] == [1, 0, 1, 0]


@pytest.mark.slow
def test_training_is_deterministic_given_a_seed(tiny_config, tmp_path, fit_in):
    first, first_run = fit_in(tiny_config, tmp_path / "a")
    second, second_run = fit_in(tiny_config, tmp_path / "b")
    assert first["test"] == second["test"]
    weights_a = keras.models.load_model(first_run.model).get_weights()
    weights_b = keras.models.load_model(second_run.model).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(weights_a, weights_b))
    history = list(csv.DictReader(first_run.history.open()))
    assert [int(row["epoch"]) for row in history] == [0, 1]
    assert {"val_logits_accuracy", "val_audio_logits_accuracy", "val_face_logits_accuracy"} <= set(history[0])


def test_validation_subjects_come_from_training_folds(tiny_config, tmp_path, fit_in):
    metrics, run = fit_in(tiny_config, tmp_path / "run")
    split = json.loads(run.split.read_text())
    assert split["test"] == ["s000", "s001"]  # fold 0 of 6 subjects in 3 folds
    assert split["validation"] == ["s002", "s003"]
    assert not set(split["validation"]) & set(split["test"])
    assert not set(split["train"]) & (set(split["test"]) | set(split["validation"]))
    assert metrics["test_subjects"] == split["test"]
    assert metrics["test"]["av"]["num_clips"] == 2 * 12
    assert metrics["synthetic"] is True
    for name in ("av", "audio", "face"):
        assert (run.root / f"confusion_{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_with_only_the_fused_loss_trained_its_validation_loss_is_the_validation_loss(
    tiny_config, tmp_path, fit_in
):
    # The validation records are filtered by subject (unknown length): Keras 3.15 ran one more
    # step into the end of the data, which counted a batch for each output's own loss (the
    # count needs no data) but added nothing, so val_logits_loss read val_loss x n/(n+1).
    assert tiny_config.train.modality_loss_weight == 0
    _, run = fit_in(tiny_config, tmp_path / "run")
    rows = list(csv.DictReader(run.history.open()))
    assert rows
    for row in rows:
        assert float(row["val_logits_loss"]) == pytest.approx(float(row["val_loss"]), rel=1e-5)
        assert float(row["logits_loss"]) == pytest.approx(float(row["loss"]), rel=1e-5)


def test_without_validation_every_other_fold_trains_on_a_cosine_schedule(tiny_config, tmp_path, fit_in):
    config = dataclasses.replace(
        tiny_config,
        cv=dataclasses.replace(tiny_config.cv, validation=False),
        train=dataclasses.replace(
            tiny_config.train, epochs=4, lr_schedule="cosine", early_stopping_patience=0
        ),
    )
    metrics, run = fit_in(config, tmp_path / "run")
    split = json.loads(run.split.read_text())
    assert split["test"] == ["s000", "s001"] and split["validation"] == []
    assert split["train"] == ["s002", "s003", "s004", "s005"]  # the validation fold trains too
    assert "validation" not in metrics and metrics["training"]["weights"] == "last epoch"
    assert not run.best_weights.exists()
    history = list(csv.DictReader(run.history.open()))
    assert {row["val_loss"] for row in history} == {"NA"}  # Keras' CSVLogger keeps the column
    rate = config.train.learning_rate
    expected = [rate * 0.5 * (1 + np.cos(np.pi * epoch / 4)) for epoch in range(4)]
    np.testing.assert_allclose([float(row["learning_rate"]) for row in history], expected, rtol=1e-5)


def test_a_finished_run_is_not_trained_again(tiny_config, tmp_path, fit_in):
    metrics, run = fit_in(tiny_config, tmp_path / "run")
    stamp = run.model.stat().st_mtime_ns
    again, _ = fit_in(tiny_config, tmp_path / "run")
    assert again == metrics
    assert run.model.stat().st_mtime_ns == stamp


def _weights(run_dir):
    return keras.models.load_model(run_dir / "model.keras").get_weights()


def test_temporary_folders_of_processes_killed_on_this_host_are_removed_at_the_next_start(
    tmp_path, monkeypatch
):
    """autograph's files are deleted at exit, which kill -9 skips; each process writes them to its
    own folder, and the next mater-tf start removes those of the processes that are gone."""
    import socket
    import tempfile

    from mater_tf import environment

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(environment, "_private_temporary", [])
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    folders = {
        "killed": tmp_path / f"mater-tf-tmp-{host}-{gone.pid}",
        "alive": tmp_path / f"mater-tf-tmp-{host}-{os.getppid()}",
        "other host": tmp_path / f"mater-tf-tmp-elsewhere-{gone.pid}",
    }
    for folder in folders.values():
        folder.mkdir()
        (folder / "__autograph_generated_filex1y2z3.py").write_text("# left by a killed run\n")
    own = environment.private_temporary_folder()
    assert own == tmp_path / f"mater-tf-tmp-{host}-{os.getpid()}" and own.is_dir()
    assert tempfile.gettempdir() == str(own)
    assert not folders["killed"].exists() and folders["alive"].is_dir() and folders["other host"].is_dir()


@pytest.mark.slow
def test_sigterm_stops_training_like_ctrl_c_with_the_line_exit_143_and_no_autograph_files(
    tiny_overrides, tmp_path, cli_command
):
    overrides = [o for o in tiny_overrides if not o.startswith("train.epochs")] + ["train.epochs=500"]
    temporary = tmp_path / "tmp"  # where TensorFlow's autograph writes a file per converted function
    temporary.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "mater_tf.cli.main", *cli_command("train", tmp_path / "runs", "r", overrides)],
        env=dict(os.environ, PYTHONUNBUFFERED="1", TMPDIR=str(temporary)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    state = tmp_path / "runs" / "quickstart" / "r" / "backup" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not state.is_file():
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be stopped"
    assert list(temporary.rglob("__autograph_generated_file*.py")), "autograph wrote no file to look for"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == (
        "mater-tf train: stopped by SIGTERM; run the same command again to resume from the last finished epoch"
    )
    assert "Traceback" not in stderr
    assert not list(temporary.rglob("__autograph_generated_file*.py"))  # atexit ran, as after Ctrl-C


@pytest.mark.slow
def test_a_run_killed_at_a_random_epoch_ends_as_if_never_interrupted(
    tiny_overrides, tmp_path, cli_command, capsys, monkeypatch
):
    # The in-process runs skip the SavedModel export (the killed one never reaches it): the
    # weights, history and metrics are compared.
    monkeypatch.setattr(trainer, "export_saved_model", mock.Mock())
    # Live plateau and early-stopping counters, dropout, and a shuffled training order:
    # everything a resumed run must carry over.
    overrides = [o for o in tiny_overrides if not o.startswith("train.epochs")] + [
        "train.epochs=10",
        "train.lr_patience=1",
        "train.lr_factor=0.5",
        "train.early_stopping_patience=4",
        "model.dropout=0.3",
    ]
    command = cli_command("train", tmp_path / "killed", "r", overrides)
    assert main(cli_command("train", tmp_path / "whole", "r", overrides)) == 0
    whole = tmp_path / "whole" / "quickstart" / "r"
    run_dir = tmp_path / "killed" / "quickstart" / "r"
    epochs_run = len(list(csv.DictReader((whole / "history.csv").open())))
    kill_after = int(np.random.default_rng().integers(1, epochs_run - 1))
    process = subprocess.Popen(
        [sys.executable, "-m", "mater_tf.cli.main", *command],
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,  # not the checkout: `-m` would import its sources instead of the installed package
    )
    state = run_dir / "backup" / "state.json"
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None:
        if state.is_file() and json.loads(state.read_text() or "{}").get("epoch", 0) >= kill_after:
            break
        time.sleep(0.02)
    assert process.poll() is None, "training finished before it could be killed; make it longer"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "metrics.json").exists()
    done = json.loads(state.read_text())["epoch"]
    capsys.readouterr()
    assert main(command) == 0
    assert f"from epoch {done + 1} of 10 ({done} finished)" in capsys.readouterr().out
    assert (run_dir / "metrics.json").read_text() == (whole / "metrics.json").read_text(), kill_after
    assert (run_dir / "history.csv").read_text() == (whole / "history.csv").read_text(), kill_after
    assert all(np.array_equal(a, b) for a, b in zip(_weights(run_dir), _weights(whole)))
    assert not (run_dir / "backup").exists()


@pytest.mark.slow
def test_cross_validation_end_to_end_and_resume(tiny_overrides, tmp_path, capsys, cli_command):
    command = cli_command("cv", tmp_path, "cv", tiny_overrides)
    assert main(command) == 0
    cv_dir = tmp_path / "quickstart" / "cv"
    assignment = json.loads((cv_dir / "folds.json").read_text())
    fold_subjects = [f["subjects"] for f in assignment["folds"]]
    assert fold_subjects == [["s000", "s001"], ["s002", "s003"], ["s004", "s005"]]
    summary = json.loads((cv_dir / "cv_metrics.json").read_text())
    assert summary["num_folds_finished"] == 3
    for output in ("av", "audio", "face"):
        per_fold = [
            json.loads((cv_dir / f"fold_{k:02d}" / "metrics.json").read_text())["test"][output]["accuracy"]
            for k in range(3)
        ]
        entry = summary["outputs"][output]["accuracy"]
        assert entry["per_fold"] == per_fold
        assert entry["mean"] == pytest.approx(np.mean(per_fold))
        assert entry["std"] == pytest.approx(np.std(per_fold, ddof=1))
        assert summary["outputs"][output]["pooled"]["num_clips"] == 72
    for k in range(3):
        split = json.loads((cv_dir / f"fold_{k:02d}" / "split.json").read_text())
        assert split["test"] == fold_subjects[k]
        assert split["validation"] == fold_subjects[(k + 1) % 3]
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "AV" in out
    stamps = [(cv_dir / f"fold_{k:02d}" / "model.keras").stat().st_mtime_ns for k in range(3)]
    (cv_dir / "fold_02" / "metrics.json").unlink()  # as if the last fold had been interrupted
    assert main(command) == 0
    assert [(cv_dir / f"fold_{k:02d}" / "model.keras").stat().st_mtime_ns for k in range(2)] == stamps[:2]
    assert (cv_dir / "fold_02" / "metrics.json").is_file()


def test_cv_summary_of_nothing(tmp_path):

    with pytest.raises(UserError, match="no finished folds"):
        cv.summarize(tmp_path)


def test_a_modality_is_scored_only_on_the_clips_where_it_is_present():
    from mater_tf.training.evaluation import split_metrics

    uniform = np.zeros((4, 3))  # what a branch outputs for a clip without its modality: argmax 0
    confident = np.eye(3)[[1, 2, 1, 0]] * 5
    predictions = {
        "label": np.array([1, 2, 0, 0]),
        "logits": confident,
        "face_logits": np.where(np.array([[1], [1], [0], [0]]), confident, uniform),
        "face_present": np.array([True, True, False, False]),
        "audio_present": np.ones(4, bool),
    }
    metrics = split_metrics(predictions, ["a", "b", "c"])
    # Clips 3 and 4 have no face: their uniform face output (class 0 = their label) must not count.
    assert metrics["face"]["num_clips"] == 2 and metrics["face"]["accuracy"] == 1.0
    assert metrics["face"]["num_clips_without_modality"] == 2
    assert metrics["av"]["num_clips"] == 4 and metrics["av"]["accuracy"] == 0.75
    nobody = dict(predictions, face_present=np.zeros(4, bool))
    assert split_metrics(nobody, ["a", "b", "c"])["face"]["accuracy"] is None


def test_a_face_only_model_counts_only_the_clips_with_a_face():
    from mater_tf.training.evaluation import split_metrics

    # A face-only model: late fusion of the face alone, all-zero logits (argmax: class 0)
    # where there is no face. Clips 3 and 4 have none; clip 4's label is 0.
    face = np.array([[0.0, 4.0, 0.0], [4.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    predictions = {
        "label": np.array([1, 0, 2, 0]),
        "logits": face,
        "face_logits": face,
        "face_present": np.array([True, True, False, False]),
    }
    metrics = split_metrics(predictions, ["a", "b", "c"])
    for output in ("av", "face"):  # the model's figure and its branch's: the same clips
        assert metrics[output]["num_clips"] == 2 and metrics[output]["accuracy"] == 1.0
        assert metrics[output]["num_clips_without_modality"] == 2
    # An AV model scores every clip where either modality is present, none where both are absent.
    both = dict(predictions, audio_present=np.array([True, False, True, False]))
    assert split_metrics(both, ["a", "b", "c"])["av"]["num_clips"] == 3


def test_a_branch_no_training_clip_could_teach_gets_no_figure():
    from mater_tf.training.evaluation import split_metrics

    predictions = {
        "label": np.array([1, 0, 2]),
        "logits": np.eye(3)[[1, 0, 0]] * 5,
        "face_logits": np.eye(3)[[1, 0, 2]] * 5,  # what chance can give: no figure to trust
        "face_present": np.array([True, True, False]),
        "audio_present": np.ones(3, bool),
    }
    metrics = split_metrics(predictions, ["a", "b", "c"], untrained=["face"])
    assert metrics["face"]["accuracy"] is None and metrics["face"]["num_clips"] == 0
    assert "no training clip has a face" in metrics["face"]["not_trained"]
    assert metrics["face"]["num_clips_without_modality"] == 1
    assert metrics["av"]["untrained_modalities"] == ["face"]
    table = format_accuracy_table(metrics)
    assert "not scored: no training clip has a face" in table and "untrained face branch" in table


def test_a_non_finite_loss_stops_training_with_no_export(
    tiny_overrides, tmp_path, capsys, cli_command, monkeypatch
):
    import keras

    class NonFinite(keras.losses.Loss):  # what an exploding model does to the loss
        def call(self, y_true, y_pred):
            return keras.ops.mean(y_pred, axis=-1) * float("nan")

    def losses(self):
        return {key: NonFinite() for key in self.output_keys()}, {key: 1.0 for key in self.output_keys()}

    monkeypatch.setattr(task.Task, "build_losses", losses)
    assert main(cli_command("train", tmp_path, "r", tiny_overrides)) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(error) == 1 and "the training loss became nan in epoch 1" in error[0], error
    assert "nothing was exported" in error[0]
    run_dir = tmp_path / "quickstart" / "r"
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "model.keras").exists()
    assert not (run_dir / "export").exists()
    assert not (run_dir / "backup" / "state.json").exists()  # a non-finite epoch is never committed


def test_metrics_state_the_protocol_and_tensorboard_holds_no_test_scalar(tiny_config, tmp_path, fit_in):
    import tensorflow as tf

    metrics, run = fit_in(tiny_config, tmp_path / "run")
    protocol = metrics["protocol"]
    assert protocol["test_subjects"] == ["s000", "s001"] and protocol["validation_subjects"] == [
        "s002",
        "s003",
    ]
    assert (protocol["train_clips"], protocol["validation_clips"], protocol["test_clips"]) == (24, 24, 24)
    scalar_tags = set()
    for path in run.logs.rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name in ("scalars", "") or "hparams/" in value.tag:
                    scalar_tags.add((path.parent.name, value.tag))
    assert ("validation", "hparams/validation_av_accuracy") in scalar_tags
    assert not [tag for tag in scalar_tags if "test" in tag[0] or "test" in tag[1]], scalar_tags


def test_a_run_killed_after_early_stopping_ended_it_does_not_train_on(
    tiny_config, tmp_path, fit_in, monkeypatch, capsys
):
    config = dataclasses.replace(
        tiny_config,
        train=dataclasses.replace(
            tiny_config.train, epochs=12, early_stopping_patience=1, learning_rate=0.05
        ),
    )
    whole, _ = fit_in(config, tmp_path / "whole")
    assert whole["training"]["stopped_early"], "make it stop early"

    original = trainer.evaluation.evaluate

    def killed(*args, **kwargs):  # as if killed between the end of training and metrics.json
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.evaluation, "evaluate", killed)
    with pytest.raises(KeyboardInterrupt):
        fit_in(config, tmp_path / "killed")
    monkeypatch.setattr(trainer.evaluation, "evaluate", original)
    capsys.readouterr()
    resumed, run = fit_in(config, tmp_path / "killed")
    assert f"training ended after epoch {whole['training']['epochs']}; evaluating" in capsys.readouterr().out
    assert resumed == whole
    assert run.history.read_text() == (tmp_path / "whole" / "history.csv").read_text()


def test_a_model_with_a_face_branch_on_records_without_faces_reports_no_face_accuracy(
    tmp_path, capsys, cli_command, monkeypatch
):
    from mater_tf.data import records, schema

    # metrics.json and the printed table are checked, not the SavedModel: its export is skipped.
    monkeypatch.setattr(trainer, "export_saved_model", mock.Mock())
    rng = np.random.default_rng(1)
    clips = [
        schema.ClipRecord(
            clip_id=f"c{subject}{k}",
            corpus="test",
            subject=f"s{subject}",
            label=k % 2,
            label_name=f"l{k % 2}",
            duration=2.0,
            window_seconds=0.5,
            audio_embedding=rng.normal(size=(4, 4)).astype(np.float32),
            face_embedding=np.zeros((4, 4), np.float32),
            audio_valid=np.ones(4, np.int64),
            face_valid=np.zeros(4, np.int64),  # audio-only clips: no face anywhere
            face_frames_found=np.zeros(4, np.int64),
            audio_embedder="test",
            face_embedder="test",
        )
        for subject in range(3)
        for k in range(4)
    ]
    shards = records.write_shards(clips, tmp_path / "records")
    (tmp_path / "records" / "manifest.json").write_text(json.dumps({"shards": [p.name for p in shards]}))
    overrides = [
        f"data.source={tmp_path / 'records'}",
        "cv.num_folds=3",
        "model.num_layers=1",
        "model.d_model=8",
    ]
    overrides += ["model.num_heads=2", "model.ff_dim=8", "train.epochs=1", "train.batch_size=4"]
    assert main(cli_command("train", tmp_path, "r", overrides)) == 0
    metrics = json.loads((tmp_path / "quickstart" / "r" / "metrics.json").read_text())
    face = metrics["test"]["face"]
    assert face["accuracy"] is None and face["num_clips"] == 0 and face["num_clips_without_modality"] == 4
    assert metrics["test"]["av"]["num_clips"] == 4
    face_row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("FACE"))
    assert face_row.split()[1:4] == ["-", "-", "0"] and "4 clips without face" in face_row


def test_train_jit_compile_true_trains_with_xla_even_after_a_deterministic_run(tiny_config, tmp_path, fit_in):
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()  # as an earlier fit_run in this process leaves it
    compiled = []
    original = task.Task.compile

    def compile_and_keep(self, model, *args):
        original(self, model, *args)
        compiled.append(model)

    config = dataclasses.replace(
        tiny_config, train=dataclasses.replace(tiny_config.train, jit_compile="true", epochs=1)
    )
    with mock.patch.object(task.Task, "compile", compile_and_keep):
        _, run = fit_in(config, tmp_path / "run")
    assert compiled and compiled[0].jit_compile is True  # Keras would have dropped XLA silently
    history = list(csv.DictReader(run.history.open()))
    assert len(history) == 1 and np.isfinite(float(history[0]["loss"]))


def test_every_model_setting_reaches_the_hparams_dashboard():
    """List settings are logged as strings: runs that differ only in them must not look alike."""
    import types

    from mater_tf.config import load_config
    from mater_tf.training.trainer import hyperparameters

    config = load_config(
        "quickstart",
        [
            "model.audio_frontend=stats",
            "model.band_statistics=mean,change_std",
            "model.modalities=audio,face",
        ],
    )
    logged = hyperparameters(config, types.SimpleNamespace(num_windows=8, window_seconds=0.5))
    assert logged["model.band_statistics"] == "mean,change_std"
    assert logged["model.audio_frontend_filters"] == "16,32,64"
    assert logged["model.modalities"] == "audio,face"
    assert {f"model.{name}" for name in dataclasses.asdict(config.model) if name != "augment"} <= set(logged)
    assert {f"model.augment.{name}" for name in dataclasses.asdict(config.model.augment)} <= set(logged)


def test_a_model_without_encoder_layers_trains_exports_and_logs_no_attention(
    tiny_overrides, tmp_path, fit_in
):
    from mater_tf.config import load_config

    config = load_config("quickstart", [*tiny_overrides, "model.num_layers=0", "model.window_pooling=concat"])
    metrics, run = fit_in(config, tmp_path / "run", export=True)
    assert 0.0 <= metrics["test"]["av"]["accuracy"] <= 1.0
    assert (run.root / "export" / "saved_model.pb").exists()
    reloaded = keras.models.load_model(run.model)
    assert reloaded.num_layers == 0 and not reloaded._attention_scores


@pytest.mark.parametrize("weight_decay", [0.0, 0.5])
def test_weight_decay_shrinks_every_weight_by_the_rate_times_the_decay_each_step(
    tiny_config, tmp_path, weight_decay
):
    config = dataclasses.replace(
        tiny_config,
        train=dataclasses.replace(tiny_config.train, learning_rate=0.01, weight_decay=weight_decay),
    )
    records_path = experiment_data.resolve_records(config, tmp_path / "data")
    optimizer = task.Task(config, experiment_data.index_for(config, records_path)).build_optimizer(1, 10)
    weight = keras.Variable(np.full((3,), 2.0, np.float32))
    optimizer.apply_gradients([(np.zeros(3, np.float32), weight)])
    # A zero gradient moves Adam nowhere; decoupled decay takes lr x decay of the weight.
    np.testing.assert_allclose(weight.numpy(), 2.0 * (1 - 0.01 * weight_decay), rtol=1e-6)


def test_no_test_fold_trains_every_subject_and_reports_no_test_figure(tiny_config, tmp_path, fit_in, capsys):
    """cv.test_fold=-1 (a model to ship, e.g. the built-in voice): every subject trains, nothing is
    tested, and nothing pretends to be a held-out figure."""
    from mater_tf.cli.common import format_test_results

    config = dataclasses.replace(
        tiny_config,
        cv=dataclasses.replace(tiny_config.cv, validation=False, test_fold=-1),
        train=dataclasses.replace(tiny_config.train, early_stopping_patience=0),
    )
    metrics, run = fit_in(config, tmp_path / "run")
    split = json.loads(run.split.read_text())
    assert split["train"] == [f"s00{k}" for k in range(6)] and split["test"] == split["validation"] == []
    assert metrics["test"] == {} and metrics["protocol"]["train_clips"] == 6 * 12
    assert metrics["protocol"]["test_clips"] == 0 and not list(run.root.glob("confusion_*.png"))
    assert format_test_results(metrics).startswith("no test fold (cv.test_fold=-1): every subject trained")


@pytest.mark.parametrize(
    "windowing, expects, fix",
    [
        ((6, 0.0), "expects 6 windows;", "--set data.num_windows=4"),
        ((0, 0.25), "expects 0.25 s windows;", "--set data.window_seconds=0.5"),
        ((6, 0.25), "expects 6 x 0.25 s windows;", "--set data.num_windows=4 --set data.window_seconds=0.5"),
    ],
)
def test_records_at_another_windowing_name_only_what_the_experiment_sets(
    tiny_config, tmp_path, windowing, expects, fix
):
    """The synthetic records are 4 x 0.5 s; a setting left at 0 (any) is never advised as 0.0."""
    windows, seconds = windowing
    config = dataclasses.replace(
        tiny_config, data=dataclasses.replace(tiny_config.data, num_windows=windows, window_seconds=seconds)
    )
    records_path = experiment_data.resolve_records(config, tmp_path / "data")
    with pytest.raises(UserError) as caught:
        experiment_data.index_for(config, records_path)
    line = str(caught.value)
    assert "have 4 x 0.5 s windows" in line and expects in line and line.endswith(f"windowing: {fix}")
    assert f"--windows {windows or 4} --window-seconds {seconds or 0.5}," in line and " 0.0" not in line
