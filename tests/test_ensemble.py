"""`model.ensemble`: members trained side by side, each on its own loss; outputs average them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mater_tf.config import load_config
from mater_tf.errors import UserError
from mater_tf.layers import MemberCrossEntropy
from mater_tf.models import MATER
from mater_tf.training import experiment_data, rundir, task, trainer

RNG = np.random.default_rng(11)
TINY = dict(num_layers=1, d_model=8, num_heads=2, ff_dim=16, head_hidden_dim=8, dropout=0.0)


def inputs(batch=3, windows=4):
    return {
        "audio_embedding": RNG.normal(size=(batch, windows, 6)).astype(np.float32),
        "audio_valid": np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], np.float32)[:batch],
        "face_embedding": RNG.normal(size=(batch, windows, 4)).astype(np.float32),
        "face_valid": np.array([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0]], np.float32)[:batch],
    }


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_an_ensembles_outputs_average_its_members_probabilities():
    model = MATER(6, 4, 5, num_windows=4, ensemble=3, **TINY)
    out = {k: np.asarray(v) for k, v in model(inputs()).items()}
    assert out["member_logits"].shape == (3, 3, 5) and out["face_member_logits"].shape == (3, 3, 5)
    assert set(model.output_names) == {"logits", "audio_logits", "face_logits"} | {
        "member_logits",
        "audio_member_logits",
        "face_member_logits",
    }
    # Independently initialised members disagree ...
    assert not np.allclose(out["member_logits"][:, 0], out["member_logits"][:, 1], atol=1e-3)
    # ... and the ensemble's probabilities are their mean, for the fused and each modality's output.
    for key, members in (("logits", "member_logits"), ("audio_logits", "audio_member_logits")):
        np.testing.assert_allclose(softmax(out[key]), softmax(out[members]).mean(1), atol=1e-6)
    # Each member fuses its own modalities: clip 1 has no face, so its fused logits are its audio's.
    np.testing.assert_allclose(out["member_logits"][1], out["audio_member_logits"][1], atol=1e-6)


def test_a_single_model_keeps_its_outputs_and_layer_names():
    model = MATER(6, 4, 5, num_windows=4, **TINY)
    assert sorted(model.output) == ["audio_logits", "face_logits", "logits"]
    assert {"audio_projection", "audio_logits", "logits"} <= {layer.name for layer in model.layers}
    assert not any("member" in layer.name for layer in model.layers)


@pytest.mark.parametrize("one_hot", [False, True])
def test_member_cross_entropy_is_the_mean_of_every_members_own_cross_entropy(one_hot):
    logits = RNG.normal(size=(4, 3, 5)).astype(np.float32)
    labels = np.array([0, 4, 2, 2])
    targets = np.eye(5, dtype=np.float32)[labels]
    if one_hot:  # mixed rows, as mixup makes them
        targets = 0.7 * targets + 0.3 * np.eye(5, dtype=np.float32)[[1, 1, 3, 0]]
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_member = -(targets[:, None, :] * log_p).sum(-1)  # [batch, members]
    loss = MemberCrossEntropy(one_hot=one_hot)(targets if one_hot else labels, logits)
    np.testing.assert_allclose(float(loss), per_member.mean(), rtol=1e-5)


def test_member_cross_entropy_smooths_the_targets_of_every_member():
    logits = RNG.normal(size=(4, 3, 5)).astype(np.float32)
    targets = np.eye(5, dtype=np.float32)[[0, 4, 2, 2]]
    smoothed = 0.8 * targets + 0.2 / 5  # e = 0.2 spread over the 5 classes
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -(smoothed[:, None, :] * log_p).sum(-1).mean()
    loss = MemberCrossEntropy(one_hot=True, label_smoothing=0.2)(targets, logits)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="one-hot targets"):
        MemberCrossEntropy(label_smoothing=0.2)


def test_a_members_gradient_does_not_depend_on_the_other_members():
    """Each member learns from its own loss: changing member 0 leaves member 1's gradient as it
    was (training on the averaged output would couple them)."""
    model = MATER(6, 4, 5, num_windows=4, ensemble=2, modalities=("audio",), **TINY)
    x = {k: v for k, v in inputs().items() if k.startswith("audio")}
    labels = np.array([1, 3, 0])
    loss = MemberCrossEntropy()
    kernel = model.get_layer("audio_logits_member1").kernel

    def member1_gradient():
        with tf.GradientTape() as tape:
            value = loss(labels, model(x, training=True)["member_logits"])
        return tape.gradient(value, kernel.value).numpy()

    before = member1_gradient()
    assert np.abs(before).max() > 0
    member0 = model.get_layer("audio_logits_member0")
    member0.kernel.assign(member0.kernel.numpy() + RNG.normal(size=member0.kernel.shape).astype(np.float32))
    np.testing.assert_allclose(member1_gradient(), before, atol=1e-7)


def test_an_ensemble_trains_saves_and_serves_its_averaged_probabilities(tiny_overrides, tmp_path):
    config = load_config("quickstart", [*tiny_overrides, "model.ensemble=2"])
    run = rundir.RunDir(tmp_path / "run")
    rundir.write_config(config, run)
    records_path = experiment_data.resolve_records(config, tmp_path / "data")
    index = experiment_data.index_for(config, records_path)
    split = experiment_data.make_split(config, index)
    metrics = trainer.fit_run(config, run, records_path, index, split)
    assert 0.0 <= metrics["test"]["av"]["accuracy"] <= 1.0
    reloaded = keras.models.load_model(run.model)
    assert reloaded.ensemble == 2
    batch, *_ = next(iter(task.Task(config, index).build_inputs(split.test, with_context=True)))
    expected = tf.nn.softmax(reloaded(batch, training=False)["logits"]).numpy()
    served = tf.saved_model.load(str(run.export)).signatures["serving_default"](**batch)
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    # The test metrics are the members' averaged probabilities', not one member's.
    test_data = task.Task(config, index).build_inputs(split.test, with_context=True)
    predictions = trainer.evaluation.predict_split(reloaded, test_data)
    averaged = softmax(predictions["member_logits"]).mean(1)
    np.testing.assert_allclose(softmax(predictions["logits"]), averaged, atol=1e-5)
    expected = (averaged.argmax(-1) == predictions["label"]).mean()
    assert metrics["test"]["av"]["accuracy"] == pytest.approx(expected)


def test_an_ensemble_trains_on_mixed_targets(tiny_overrides, tmp_path):
    config = load_config("quickstart", [*tiny_overrides, "model.ensemble=2", "train.mixup_alpha=0.4"])
    index = experiment_data.index_for(config, experiment_data.resolve_records(config, tmp_path / "data"))
    split = experiment_data.make_split(config, index)
    the_task = task.Task(config, index)
    data = the_task.build_inputs(split.train, training=True)
    _, targets = next(iter(data))
    # Every member output gets the batch's mixed one-hot rows.
    np.testing.assert_array_equal(targets["member_logits"].numpy(), targets["logits"].numpy())
    assert targets["member_logits"].shape[-1] == index.num_classes
    assert not np.all(np.isin(targets["logits"].numpy(), (0.0, 1.0)))
    model = the_task.build_model()
    the_task.compile(model, 1, 2)
    history = model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and history.history["loss"][0] > 0


def test_an_ensembles_members_train_on_smoothed_targets(tiny_overrides, tmp_path):
    config = load_config("quickstart", [*tiny_overrides, "model.ensemble=2", "train.label_smoothing=0.2"])
    index = experiment_data.index_for(config, experiment_data.resolve_records(config, tmp_path / "data"))
    split = experiment_data.make_split(config, index)
    the_task = task.Task(config, index)
    model = the_task.build_model()
    the_task.compile(model, 1, 1)
    data = the_task.build_inputs(split.validation, with_context=True)
    predictions = trainer.evaluation.predict_split(model, data)
    logits, labels = predictions["member_logits"], predictions["label"]  # [clips, members, classes]
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    rows = 0.8 * np.eye(index.num_classes)[labels] + 0.2 / index.num_classes
    expected = -(rows[:, None, :] * log_p).sum(-1).mean()
    evaluated = model.evaluate(the_task.build_inputs(split.validation), return_dict=True, verbose=0)
    assert evaluated["loss"] == pytest.approx(expected, rel=1e-4)


def test_an_ensemble_needs_at_least_one_member():
    with pytest.raises(UserError, match=r"model.ensemble=0 must be >= 1"):
        load_config("quickstart", ["model.ensemble=0"])
