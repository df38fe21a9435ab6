"""Mixup of training clips (train.mixup_alpha) and label smoothing (train.label_smoothing):
the batches, their determinism, the losses."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from mater_tf.config import load_config
from mater_tf.data import records, synthetic
from mater_tf.training.experiment_data import index_for, make_split
from mater_tf.training.task import Task


def test_mixup_mixes_inputs_and_one_hot_labels_with_one_weight_per_clip():
    rng = np.random.default_rng(0)
    features = {
        "audio_log_mel": tf.constant(rng.normal(size=(4, 3, 5, 64)), tf.float32),
        "audio_valid": tf.constant([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0]], tf.float32),
        "face_embedding": tf.constant(rng.normal(size=(4, 3, 6)), tf.float32),
        "face_valid": tf.constant([[1, 1, 1], [1, 1, 0], [0, 0, 0], [1, 0, 0]], tf.float32),
        "label": tf.constant([0, 1, 2, 3]),
        "subject": tf.constant(["a", "b", "c", "d"]),
    }
    mixed = records.mixup(features, 0.4, 5, tf.constant([7, 3], tf.int64))
    target = mixed["target"].numpy()
    np.testing.assert_allclose(target.sum(1), 1.0, rtol=1e-6)
    for i in range(4):
        partner = 3 - i  # the batch reversed
        lam = target[i, i]
        assert 0.0 <= lam <= 1.0 and target[i, partner] == pytest.approx(1.0 - lam, abs=1e-6)
        assert np.count_nonzero(target[i]) <= 2
        for name, valid_name in (("audio_log_mel", "audio_valid"), ("face_embedding", "face_valid")):
            own, other = features[name].numpy()[i], features[name].numpy()[partner]
            own_valid, other_valid = features[valid_name].numpy()[i], features[valid_name].numpy()[partner]
            for window in range(3):
                if own_valid[window] and other_valid[window]:
                    expected = lam * own[window] + (1 - lam) * other[window]
                elif own_valid[window]:  # the partner has no such window: the own one, whole
                    expected = own[window]
                else:
                    expected = other[window]
                np.testing.assert_allclose(mixed[name].numpy()[i, window], expected, rtol=1e-5, atol=1e-5)
            np.testing.assert_array_equal(mixed[valid_name].numpy()[i], np.maximum(own_valid, other_valid))
    np.testing.assert_array_equal(mixed["label"].numpy(), [0, 1, 2, 3])
    assert not np.allclose(target, np.eye(5)[[0, 1, 2, 3]])  # something was mixed
    again = records.mixup(features, 0.4, 5, tf.constant([7, 3], tf.int64))["target"].numpy()
    other = records.mixup(features, 0.4, 5, tf.constant([8, 3], tf.int64))["target"].numpy()
    np.testing.assert_array_equal(again, target)
    assert not np.allclose(other, target)


@pytest.fixture(scope="module")
def mixup_task(tmp_path_factory):
    config = load_config("quickstart", ["train.mixup_alpha=0.4", "train.batch_size=8", "cv.num_folds=3"])
    path = synthetic.write_corpus(config.data.synthetic, tmp_path_factory.mktemp("records"))
    index = index_for(config, path)
    return config, index, make_split(config, index)


def test_an_epochs_mixed_batches_are_the_same_after_a_resume(mixup_task):
    config, index, split = mixup_task
    task = Task(config, index)
    steps = task.steps_per_epoch(split.train)
    whole = list(task.build_inputs(split.train, training=True, epochs=(0, 3)))
    resumed = list(task.build_inputs(split.train, training=True, epochs=(2, 3)))
    assert len(whole) == 3 * steps and len(resumed) == steps
    for (a, ta), (b, tb) in zip(whole[2 * steps :], resumed):
        np.testing.assert_array_equal(ta["logits"].numpy(), tb["logits"].numpy())
        np.testing.assert_array_equal(a["audio_embedding"].numpy(), b["audio_embedding"].numpy())
    first, second = whole[0][1]["logits"].numpy(), whole[steps][1]["logits"].numpy()
    assert first.shape == (8, index.num_classes) and not np.allclose(first, second)
    assert (first.max(1) < 1.0).any()  # mixed labels


def test_with_mixup_validation_scores_as_without(mixup_task):
    """Mixup makes every split's targets one-hot and the loss categorical; on held-out
    clips the compiled loss and accuracy must be those of the plain integer labels."""
    config, index, split = mixup_task
    plain_config = dataclasses.replace(config, train=dataclasses.replace(config.train, mixup_alpha=0.0))
    keras.utils.set_random_seed(0)
    mixed_task, plain_task = Task(config, index), Task(plain_config, index)
    model = mixed_task.build_model()
    validation = mixed_task.build_inputs(split.validation)
    targets = next(iter(validation))[1]["logits"].numpy()
    np.testing.assert_array_equal(targets.sum(1), 1.0)  # one-hot rows, not mixed
    mixed_task.compile(model, 1, 1)
    with_mixup = model.evaluate(validation, return_dict=True, verbose=0)
    plain_task.compile(model, 1, 1)
    without = model.evaluate(plain_task.build_inputs(split.validation), return_dict=True, verbose=0)
    assert with_mixup.keys() == without.keys()
    for key in without:
        assert with_mixup[key] == pytest.approx(without[key], rel=1e-5), key


def test_a_run_trained_with_mixup_evaluates_and_exports(tiny_overrides, tmp_path, cli_command, capsys):
    """Everything after training reads integer labels from the records, not the one-hot targets."""
    import json

    from mater_tf.cli.main import main

    overrides = [*tiny_overrides, "train.mixup_alpha=0.4"]
    assert main(cli_command("train", tmp_path, "r", overrides)) == 0
    run = tmp_path / "quickstart" / "r"
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["av"]["accuracy"] <= 1.0 and metrics["test"]["av"]["num_clips"] > 0
    assert (
        sum(map(sum, metrics["validation"]["av"]["confusion_matrix"]))
        == metrics["validation"]["av"]["num_clips"]
    )
    assert (run / "export" / "saved_model.pb").is_file()
    keras.models.load_model(run / "model.keras")  # compiled with the categorical loss: it must load
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run)]) == 0
    assert "accuracy" in capsys.readouterr().out.lower()


def test_label_smoothing_trains_on_smoothed_targets_and_scores_on_the_clips_labels(mixup_task):
    """The loss is the cross-entropy against 1 - e on the clip's class plus e / classes on
    every class; the accuracy is read against the clip's own label; nothing is mixed."""
    config, index, split = mixup_task
    train = dataclasses.replace(config.train, mixup_alpha=0.0, label_smoothing=0.3)
    smooth_config = dataclasses.replace(config, train=train)
    plain_config = dataclasses.replace(config, train=dataclasses.replace(train, label_smoothing=0.0))
    keras.utils.set_random_seed(0)
    smooth_task, plain_task = Task(smooth_config, index), Task(plain_config, index)
    model = smooth_task.build_model()
    batch = next(iter(smooth_task.build_inputs(split.train, training=True)))
    np.testing.assert_array_equal(np.sort(batch[1]["logits"].numpy(), axis=1)[:, -1], 1.0)  # plain one-hot
    validation = smooth_task.build_inputs(split.validation)
    smooth_task.compile(model, 1, 1)
    smoothed = model.evaluate(validation, return_dict=True, verbose=0)
    plain_task.compile(model, 1, 1)
    plain = model.evaluate(plain_task.build_inputs(split.validation), return_dict=True, verbose=0)
    assert smoothed["logits_accuracy"] == pytest.approx(plain["logits_accuracy"])

    inputs, targets = [], []
    for x, y in plain_task.build_inputs(split.validation):
        inputs.append(model(x)["logits"].numpy())
        targets.append(y["logits"].numpy())
    logits, labels = np.concatenate(inputs), np.concatenate(targets)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    rows = 0.7 * np.eye(index.num_classes)[labels] + 0.3 / index.num_classes
    assert smoothed["loss"] == pytest.approx(-(rows * log_p).sum(-1).mean(), rel=1e-4)
    assert plain["loss"] == pytest.approx(-log_p[np.arange(len(labels)), labels].mean(), rel=1e-4)
