"""SelfAttention against keras.layers.MultiHeadAttention, old saved models, and XLA."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from mater_tf.layers import EncoderBlock, SelfAttention
from mater_tf.models import MATER

RNG = np.random.default_rng(7)
DATA = Path(__file__).resolve().parent / "data"
# Row 0: last window absent; row 1: only the first; row 2: none at all (e.g. no face in the clip).
VALID = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], np.float32)


def keras_attention_pair(num_heads=2, key_dim=4, width=8, dropout=0.0):
    """A MultiHeadAttention and a SelfAttention holding the same (random, non-zero) weights."""
    reference = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=key_dim, dropout=dropout)
    reference.build((None, 4, width), (None, 4, width))
    for weight in reference.weights:  # non-zero biases too, so a misplaced bias shows
        weight.assign(RNG.normal(scale=0.5, size=weight.shape).astype(np.float32))
    ours = SelfAttention(num_heads=num_heads, key_dim=key_dim, dropout=dropout)
    ours.build((None, 4, width))
    assert [w.shape for w in ours.weights] == [w.shape for w in reference.weights]
    ours.set_weights(reference.get_weights())
    return reference, ours


def keras_mask(valid):
    # Query t may look at key s iff s is present: the mask EncoderBlock gave MultiHeadAttention.
    return np.broadcast_to(valid[:, None, :] > 0, (len(valid), valid.shape[1], valid.shape[1]))


@pytest.mark.parametrize("training", [False, True])
def test_same_outputs_and_scores_as_keras_multi_head_attention(training):
    reference, ours = keras_attention_pair()
    inputs = RNG.normal(size=(3, 4, 8)).astype(np.float32)
    expected, expected_scores = reference(
        inputs, inputs, attention_mask=keras_mask(VALID), return_attention_scores=True, training=training
    )
    attended, scores = ours(inputs, VALID, return_attention_scores=True, training=training)
    assert scores.shape == (3, 2, 4, 4)
    np.testing.assert_allclose(np.asarray(attended), np.asarray(expected), atol=1e-5)
    np.testing.assert_allclose(np.asarray(scores), np.asarray(expected_scores), atol=1e-6)
    # The comparison can fail: absent keys get no weight, and a row with no key present is all zero.
    np.testing.assert_array_equal(np.asarray(scores)[0, :, :, 3], 0.0)
    np.testing.assert_array_equal(np.asarray(scores)[2], 0.0)
    np.testing.assert_allclose(np.asarray(scores)[1, :, :, 0], 1.0, atol=1e-6)


def test_same_gradients_as_keras_multi_head_attention():
    reference, ours = keras_attention_pair()
    inputs = tf.constant(RNG.normal(size=(3, 4, 8)).astype(np.float32))
    target = tf.constant(RNG.normal(size=(3, 4, 8)).astype(np.float32))

    def gradients(layer, call):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum((call() - target) ** 2)
        return tape.gradient(loss, [inputs, *layer.trainable_weights])

    # Asked for its scores, as the encoder block always asked: without them (and without dropout)
    # MultiHeadAttention takes its fused path, which lets a row with no key present attend everywhere.
    expected = gradients(
        reference,
        lambda: reference(inputs, inputs, attention_mask=keras_mask(VALID), return_attention_scores=True)[0],
    )
    got = gradients(ours, lambda: ours(inputs, VALID))
    assert len(got) == len(expected) == 9
    for ours_gradient, reference_gradient in zip(got, expected):
        np.testing.assert_allclose(
            np.asarray(ours_gradient), np.asarray(reference_gradient), atol=1e-4, rtol=1e-5
        )
    assert np.abs(np.asarray(got[1])).max() > 1e-3  # a real gradient, not zeros on both sides


def test_weights_keep_the_names_of_keras_multi_head_attention():
    block = EncoderBlock(d_model=8, num_heads=2, ff_dim=16)
    block(RNG.normal(size=(1, 4, 8)).astype(np.float32), VALID[:1])
    paths = sorted(w.path for w in block.weights if "self_attention" in w.path)
    assert paths == sorted(
        f"{block.name}/self_attention/{part}/{kind}"
        for part in ("query", "key", "value", "attention_output")
        for kind in ("kernel", "bias")
    )


def test_a_model_saved_before_the_change_loads_with_the_same_outputs():
    # Saved by tests/data/make_mater_before_issue13.py with the code of commit c1cb82d
    # (EncoderBlock on keras.layers.MultiHeadAttention); the outputs are that code's.
    saved = np.load(DATA / "mater_before_issue13.npz")
    model = keras.models.load_model(DATA / "mater_before_issue13.keras")
    assert isinstance(model, MATER)
    inputs = {key.split("/", 1)[1]: saved[key] for key in saved.files if key.startswith("input/")}
    outputs = model(inputs, training=False)
    for key in ("logits", "audio_logits", "face_logits"):
        np.testing.assert_allclose(np.asarray(outputs[key]), saved[f"output/{key}"], atol=1e-6, err_msg=key)
    scores = model.attention_model()(inputs)
    assert sorted(scores) == sorted(
        key.split("/", 1)[1] for key in saved.files if key.startswith("attention/")
    )
    for key, value in scores.items():
        np.testing.assert_allclose(np.asarray(value), saved[f"attention/{key}"], atol=1e-6, err_msg=key)


def test_a_training_step_compiles_with_xla_for_any_batch_size():
    # The Keras attention's mask BroadcastTo on the unknown batch dimension once stopped XLA.
    model = MATER(6, 4, 5, num_windows=4, num_layers=1, d_model=8, num_heads=2, ff_dim=16, dropout=0.0)
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(model.trainable_variables)

    @tf.function(
        jit_compile=True,
        input_signature=[
            {
                "audio_embedding": tf.TensorSpec((None, 4, 6)),
                "face_embedding": tf.TensorSpec((None, 4, 4)),
                "audio_valid": tf.TensorSpec((None, 4)),
                "face_valid": tf.TensorSpec((None, 4)),
            },
            tf.TensorSpec((None,), tf.int32),
        ],
    )
    def train_step(inputs, labels):
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)["logits"]
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return logits

    for batch in (3, 2):
        inputs = {
            "audio_embedding": RNG.normal(size=(batch, 4, 6)).astype(np.float32),
            "face_embedding": RNG.normal(size=(batch, 4, 4)).astype(np.float32),
            "audio_valid": VALID[:batch] * 0 + 1,
            "face_valid": VALID[:batch],
        }
        expected = np.asarray(model(inputs, training=False)["logits"])
        before = [np.asarray(w) for w in model.trainable_variables]
        compiled = np.asarray(train_step(inputs, np.arange(batch, dtype=np.int32)))
        np.testing.assert_allclose(compiled, expected, atol=1e-5)  # XLA's forward = the plain one
        assert any(not np.allclose(w, b) for w, b in zip(model.trainable_variables, before))
