import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest

from mater_tf.config import load_config
from mater_tf.data import synthetic
from mater_tf.models import MATER, build_model

RNG = np.random.default_rng(1)
SMALL = dict(num_layers=2, d_model=8, num_heads=2, ff_dim=16, head_hidden_dim=8, dropout=0.1)


def make_inputs(batch=3, windows=5, audio_dim=6, face_dim=4):
    return {
        "audio_embedding": RNG.normal(size=(batch, windows, audio_dim)).astype(np.float32),
        "face_embedding": RNG.normal(size=(batch, windows, face_dim)).astype(np.float32),
        "audio_valid": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], np.float32),
        "face_valid": np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 0, 0, 0]], np.float32),
    }


VARIANTS = {
    "mater": {},
    "no_pe": {"positional_encoding": False},
    "no_mhsa": {"attention": False},
    "baseline": {"positional_encoding": False, "attention": False},
    "lstm": {"encoder": "lstm"},
    "audio_only": {"modalities": ("audio",)},
    "video_only": {"modalities": ("face",)},
}


def build(variant, windows=5, **overrides):
    return MATER(6, 4, 5, num_windows=windows, **{**SMALL, **VARIANTS[variant], **overrides})


def inputs_for(model, inputs):
    return {k: v for k, v in inputs.items() if k.split("_")[0] in model.modalities}


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_masked_windows_never_change_any_output(variant, training):
    # dropout=0: in training mode the outputs are then deterministic and comparable.
    model = build(variant, dropout=0.0)
    inputs = inputs_for(model, make_inputs())
    reference = model(inputs, training=training)
    changed = {k: v.copy() for k, v in inputs.items()}
    if "audio_embedding" in changed:
        changed["audio_embedding"][0, 3:] = 1e3
        changed["audio_embedding"][2, 2:] = -5.0
    if "face_embedding" in changed:
        changed["face_embedding"][0, 1] = 42.0
        changed["face_embedding"][1] = RNG.normal(size=(5, 4)) * 10
    again = model(changed, training=training)
    for key in reference:
        np.testing.assert_array_equal(np.asarray(again[key]), np.asarray(reference[key]), err_msg=key)
    # A present window does change the output, so the test above can fail.
    modality = model.modalities[0]
    changed[f"{modality}_embedding"][2, 0] += 1.0
    assert not np.allclose(model(changed, training=training)["logits"], reference["logits"])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_outputs_fit_and_save(variant, tmp_path):
    model = build(variant)
    inputs = inputs_for(model, make_inputs())
    outputs = model(inputs)
    modalities = VARIANTS[variant].get("modalities", ("audio", "face"))
    assert set(outputs) == {"logits"} | {f"{m}_logits" for m in modalities}
    assert all(v.shape == (3, 5) for v in outputs.values())
    assert model.get_config()["modalities"] == list(modalities)
    labels = np.array([0, 1, 4])
    model.compile(
        optimizer="adam",
        loss={k: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for k in outputs},
    )
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(inputs, {k: labels for k in outputs}, epochs=1, verbose=0)
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights))
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded) is MATER
    assert reloaded.get_config() == model.get_config()
    for key, value in model(inputs).items():
        np.testing.assert_allclose(np.asarray(reloaded(inputs)[key]), np.asarray(value), atol=1e-5)


def test_fused_logits_are_the_mean_of_the_modalities():
    model = build("mater")
    inputs = make_inputs()
    outputs = {k: np.asarray(v) for k, v in model(inputs).items()}
    np.testing.assert_allclose(
        outputs["logits"][0], (outputs["audio_logits"][0] + outputs["face_logits"][0]) / 2, atol=1e-6
    )
    np.testing.assert_allclose(
        outputs["logits"][1], outputs["audio_logits"][1], atol=1e-6
    )  # no face in clip 1


def test_positional_encoding_makes_the_model_order_aware():
    inputs = make_inputs()
    inputs["audio_valid"][:] = 1
    inputs["face_valid"][:] = 1
    swapped = {k: v[:, ::-1].copy() for k, v in inputs.items()}
    without = build("no_pe")
    np.testing.assert_allclose(
        np.asarray(without(swapped)["logits"]), np.asarray(without(inputs)["logits"]), atol=1e-5
    )
    with_pe = build("mater")
    assert not np.allclose(
        np.asarray(with_pe(swapped)["logits"]), np.asarray(with_pe(inputs)["logits"]), atol=1e-5
    )


def _projection_to_positional_encoding_rms(model, inputs, modality="face"):
    """RMS of what the PE is added to (the scaled projection) over the present windows."""
    pe_input = model.get_layer(f"{modality}_positional_encoding").input
    projected = np.asarray(keras.Model(model.inputs, pe_input)(inputs, training=False))
    present = projected[np.asarray(inputs[f"{modality}_valid"]) > 0]
    return float(np.sqrt(np.mean(present**2)))


def _numpy_positional_encoding(length, depth):
    angles = np.arange(length)[:, None] / 10000 ** (2 * (np.arange(depth) // 2) / depth)[None, :]
    return np.where(np.arange(depth) % 2 == 0, np.sin(angles), np.cos(angles))


def _l2_normalised(shape, seed=0):
    vectors = np.random.default_rng(seed).normal(size=shape)
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def _paper_size_inputs():
    return {
        "audio_embedding": _l2_normalised((4, 8, 128)),
        "face_embedding": _l2_normalised((4, 8, 512)),
        "audio_valid": np.ones((4, 8), np.float32),
        "face_valid": np.ones((4, 8), np.float32),
    }


def _quickstart_size_inputs():
    config = load_config("quickstart")
    corpus = dataclasses.replace(config.data.synthetic, num_subjects=1, clips_per_subject=8)
    clips = synthetic.generate_clips(corpus)  # l2-normalised windows, as real embeddings are
    inputs = {
        f"{m}_{kind}": np.stack([getattr(c, f"{m}_{kind}") for c in clips]).astype(np.float32)
        for m in ("audio", "face")
        for kind in ("embedding", "valid")
    }
    sizes = dict(
        audio_dim=corpus.audio_dim,
        face_dim=corpus.face_dim,
        num_windows=corpus.num_windows,
        d_model=config.model.d_model,
        num_heads=config.model.num_heads,
    )
    return inputs, sizes


@pytest.mark.parametrize("embedding_scale", ["sqrt_d_model", "none"])
@pytest.mark.parametrize("size", ["paper", "quickstart"])
def test_embeddings_and_positional_encoding_are_of_the_same_order(size, embedding_scale):
    """The PE must not swamp the embeddings (Vaswani et al. 3.4); without the scale it did."""
    keras.utils.set_random_seed(0)
    if size == "paper":  # VGGish 128 and VGG-M 512 embeddings, d_model 512
        inputs = _paper_size_inputs()
        sizes = dict(audio_dim=128, face_dim=512, num_windows=8, d_model=512, num_heads=8)
    else:
        inputs, sizes = _quickstart_size_inputs()
    model = MATER(
        num_classes=6, num_layers=1, ff_dim=16, head_hidden_dim=8, embedding_scale=embedding_scale, **sizes
    )
    positional_encoding_rms = np.sqrt(np.mean(_numpy_positional_encoding(8, sizes["d_model"]) ** 2))
    for modality in ("audio", "face"):
        ratio = _projection_to_positional_encoding_rms(model, inputs, modality) / positional_encoding_rms
        if embedding_scale == "sqrt_d_model":
            assert 0.3 < ratio < 3.0, (modality, ratio)
        else:  # the defect: the PE is many times the embeddings' projection
            assert ratio < 0.3, (modality, ratio)


def test_models_saved_before_the_embedding_scale_option_load_unscaled():
    config = build("mater").get_config()
    assert config["embedding_scale"] == "sqrt_d_model"
    del config["embedding_scale"]
    assert MATER.from_config(config).embedding_scale == "none"
    with pytest.raises(ValueError, match="embedding_scale"):
        build("mater", embedding_scale="sqrt")


@pytest.mark.parametrize("training", [False, True])
def test_attention_weights_of_every_layer(training):
    model = build("mater", dropout=0.0)  # attention dropout would rescale the weights in training
    attention = model.attention_model()(make_inputs(), training=training)
    assert sorted(attention) == [
        "audio_attention_0",
        "audio_attention_1",
        "face_attention_0",
        "face_attention_1",
    ]
    weights = np.asarray(attention["audio_attention_1"])
    assert weights.shape == (3, 2, 5, 5)
    np.testing.assert_allclose(weights[0, :, :, 3:], 0.0, atol=1e-7)
    with pytest.raises(ValueError, match="no attention"):
        build("no_mhsa").attention_model()


def test_any_number_of_windows_when_unspecified():
    model = build("mater", windows=None)
    inputs = make_inputs()
    assert model(inputs)["logits"].shape == (3, 5)
    assert model({k: v[:, :3] for k, v in inputs.items()})["logits"].shape == (3, 5)


def test_factory_follows_the_config():
    config = load_config("quickstart", ["model.modalities=face", "model.encoder=lstm", "model.num_layers=1"])
    model = build_model(config.model, audio_dim=6, face_dim=4, num_classes=3, num_windows=5)
    assert model.modalities == ("face",)
    assert model.encoder == "lstm"
    assert [l.name for l in model.layers if "lstm" in l.name] == ["face_lstm_0"]


def test_config_names_the_model_embedding_scales_and_the_factory_passes_them():
    from mater_tf.config.model import EMBEDDING_SCALES as CONFIG_SCALES
    from mater_tf.models.modality_encoder import EMBEDDING_SCALES

    assert CONFIG_SCALES == EMBEDDING_SCALES
    for scale in EMBEDDING_SCALES:
        config = load_config("quickstart", [f"model.embedding_scale={scale}"])
        assert build_model(config.model, 6, 4, 3, 5).embedding_scale == scale


SAVED_BEFORE_ISSUE24 = ("stats_utterance_ensemble", "embeddings_av", "small_frontend_ensemble", "lstm_face")


@pytest.mark.parametrize("name", SAVED_BEFORE_ISSUE24)
def test_models_saved_before_the_backbone_head_split_load_with_the_same_outputs(name):
    # Saved by tests/data/make_mater_before_issue24.py with the code of commit 0086b9b (MATER
    # built in one constructor); the outputs are that code's, on the inputs saved beside them.
    data = Path(__file__).resolve().parent / "data"
    saved = np.load(data / f"mater_before_issue24_{name}.npz")
    model = keras.models.load_model(data / f"mater_before_issue24_{name}.keras")
    assert isinstance(model, MATER)
    inputs = {key.split("/", 1)[1]: saved[key] for key in saved.files if key.startswith("input/")}
    outputs = model(inputs, training=False)
    expected = {key.split("/", 1)[1]: saved[key] for key in saved.files if key.startswith("output/")}
    assert sorted(outputs) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(outputs[key]), value, atol=1e-6, err_msg=key)
    scores = {key.split("/", 1)[1]: saved[key] for key in saved.files if key.startswith("attention/")}
    if scores:
        attention = model.attention_model()(inputs)
        assert sorted(attention) == sorted(scores)
        for key, value in scores.items():
            np.testing.assert_allclose(np.asarray(attention[key]), value, atol=1e-6, err_msg=key)
