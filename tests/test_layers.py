"""Every layer: symbolic and eager call, one fit step, config round trip, .keras save/load."""

import math

import keras
import numpy as np
import pytest

from mater_tf.layers import (
    EncoderBlock,
    LateFusion,
    MaskedConcatPooling,
    MaskedMeanPooling,
    PositionalEncoding,
    sinusoidal_encoding,
)

RNG = np.random.default_rng(0)
VALID = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], np.float32)


def test_positional_encoding_matches_the_formula():
    length, depth = 7, 6
    table = np.asarray(sinusoidal_encoding(length, depth))
    for pos in range(length):
        for i in range(depth // 2):
            angle = pos / 10000 ** (2 * i / depth)
            assert table[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)


def test_positional_encoding_is_added():
    inputs = RNG.normal(size=(2, 5, 4)).astype(np.float32)
    outputs = np.asarray(PositionalEncoding()(inputs))
    np.testing.assert_allclose(
        outputs - inputs, np.broadcast_to(sinusoidal_encoding(5, 4), (2, 5, 4)), atol=1e-6
    )


@pytest.mark.parametrize("training", [False, True])
def test_masked_mean_pooling_by_hand(training):
    inputs = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    pooled = np.asarray(MaskedMeanPooling()(inputs, VALID, training=training))
    np.testing.assert_allclose(pooled[0], inputs[0, :3].mean(axis=0))
    np.testing.assert_allclose(pooled[1], inputs[1, 0])
    empty = np.asarray(MaskedMeanPooling()(inputs, np.zeros_like(VALID), training=training))
    np.testing.assert_array_equal(empty, 0.0)


@pytest.mark.parametrize("training", [False, True])
def test_masked_concat_pooling_puts_the_windows_side_by_side_with_absent_ones_zero(training):
    inputs = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3) + 1.0
    pooled = np.asarray(MaskedConcatPooling()(inputs, VALID, training=training))
    assert pooled.shape == (2, 12)
    np.testing.assert_array_equal(
        pooled[0], np.concatenate([inputs[0, 0], inputs[0, 1], inputs[0, 2], [0, 0, 0]])
    )
    np.testing.assert_array_equal(pooled[1], np.concatenate([inputs[1, 0], np.zeros(9)]))


def test_config_and_model_name_the_same_window_poolings():
    from mater_tf.config.model import WINDOW_POOLINGS as CONFIG_POOLINGS
    from mater_tf.models.classifier_head import WINDOW_POOLINGS

    assert CONFIG_POOLINGS == tuple(WINDOW_POOLINGS)


@pytest.mark.parametrize("training", [False, True])
def test_late_fusion_averages_present_modalities(training):
    audio = np.array([[1.0, 3.0], [2.0, 2.0]], np.float32)
    face = np.array([[3.0, 1.0], [8.0, 0.0]], np.float32)
    audio_valid = np.ones((2, 3), np.float32)
    face_valid = np.array([[0, 1, 0], [0, 0, 0]], np.float32)
    fused = np.asarray(LateFusion()([audio, face], [audio_valid, face_valid], training=training))
    np.testing.assert_allclose(fused[0], [2.0, 2.0])  # both present: paper eq. 3
    np.testing.assert_allclose(fused[1], audio[1])  # no face at all: audio alone


@pytest.mark.parametrize("training", [False, True])
def test_attention_never_looks_at_absent_windows(training):
    # dropout=0: in training mode the outputs are then deterministic and comparable.
    block = EncoderBlock(d_model=8, num_heads=2, ff_dim=16, dropout=0.0)
    inputs = RNG.normal(size=(2, 4, 8)).astype(np.float32)
    outputs, scores = block(inputs, VALID, return_attention_scores=True, training=training)
    scores = np.asarray(scores)
    assert scores.shape == (2, 2, 4, 4)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(scores[0, :, :, 3], 0.0, atol=1e-7)
    np.testing.assert_allclose(scores[1, :, :, 1:], 0.0, atol=1e-7)
    changed = inputs.copy()
    changed[0, 3] = 100.0
    changed[1, 1:] = -7.0
    again = np.asarray(block(changed, VALID, training=training))
    np.testing.assert_allclose(again[0, :3], np.asarray(outputs)[0, :3], atol=1e-5)
    np.testing.assert_allclose(again[1, :1], np.asarray(outputs)[1, :1], atol=1e-5)


def test_encoder_block_without_attention_keeps_feed_forward():
    block = EncoderBlock(d_model=8, num_heads=2, ff_dim=16, use_attention=False)
    block(RNG.normal(size=(1, 4, 8)).astype(np.float32), VALID[:1])
    names = {w.path.split("/")[-2] for w in block.weights}
    assert "ff_inner" in names and not any("attention" in n for n in names)


def _wrap(layer_factory):
    """A tiny model around a layer, so it can be fit, saved and reloaded."""
    sequence = keras.Input((4, 8), name="sequence")
    valid = keras.Input((4,), name="valid")
    layer = layer_factory()
    if isinstance(layer, (MaskedMeanPooling, MaskedConcatPooling)):
        x = layer(sequence, valid)
    elif isinstance(layer, EncoderBlock):
        x = MaskedMeanPooling()(layer(sequence, valid), valid)
    elif isinstance(layer, LateFusion):
        first = MaskedMeanPooling()(sequence, valid)
        x = layer([first, keras.layers.Dense(8)(first)], [valid, valid])
    else:
        x = MaskedMeanPooling()(layer(sequence), valid)
    outputs = keras.layers.Dense(3)(x)
    return keras.Model({"sequence": sequence, "valid": valid}, outputs), layer


LAYER_FACTORIES = {
    "positional_encoding": PositionalEncoding,
    "pooling": MaskedMeanPooling,
    "concat_pooling": MaskedConcatPooling,
    "fusion": LateFusion,
    "encoder": lambda: EncoderBlock(8, 2, 16, dropout=0.1),
    "encoder_no_attention": lambda: EncoderBlock(8, 2, 16, use_attention=False),
}


@pytest.mark.parametrize("name", sorted(LAYER_FACTORIES))
def test_layer_fit_config_and_save(name, tmp_path):
    model, layer = _wrap(LAYER_FACTORIES[name])
    inputs = {"sequence": RNG.normal(size=(2, 4, 8)).astype(np.float32), "valid": VALID}
    eager = np.asarray(model(inputs))
    assert eager.shape == (2, 3)
    assert model.output.shape == (None, 3)  # symbolic call
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(inputs, np.array([0, 2]), epochs=1, verbose=0)
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights))
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(reloaded(inputs)), np.asarray(model(inputs)), atol=1e-6)


def test_config_and_front_end_name_the_same_normalizations():
    from mater_tf.config import LOG_MEL_NORMALIZATIONS
    from mater_tf.layers.patch_frontend import NORMALIZATIONS

    assert LOG_MEL_NORMALIZATIONS == NORMALIZATIONS


def test_config_and_front_end_name_the_same_band_statistics():
    from mater_tf.config import model as config_model
    from mater_tf.layers import band_statistics

    assert config_model.BAND_STATISTICS == band_statistics.BAND_STATISTICS
    assert config_model.DEFAULT_BAND_STATISTICS == band_statistics.DEFAULT_BAND_STATISTICS


def test_the_modulation_statistic_reads_the_log_mels_frame_rate():
    from mater_tf.features.log_mel import FRAMES_PER_SECOND
    from mater_tf.layers import band_statistics

    assert band_statistics.FRAMES_PER_SECOND == FRAMES_PER_SECOND


def test_config_and_front_end_name_the_same_poolings():
    from mater_tf.config.model import FRONTEND_POOLINGS
    from mater_tf.layers.patch_frontend import POOLINGS

    assert FRONTEND_POOLINGS == POOLINGS


@pytest.mark.parametrize(
    "layer", [PositionalEncoding, EncoderBlock, MaskedMeanPooling, MaskedConcatPooling, LateFusion]
)
def test_layers_keep_the_registered_names_saved_models_refer_to(layer):
    assert keras.saving.get_registered_name(layer) == f"mater_tf>{layer.__name__}"
    assert keras.saving.get_registered_object(f"mater_tf>{layer.__name__}") is layer


def test_config_and_front_end_give_the_small_stack_the_same_default_channels():
    from mater_tf.config import ModelConfig
    from mater_tf.layers.patch_frontend import SMALL_FILTERS

    assert ModelConfig().audio_frontend_filters == list(SMALL_FILTERS)
