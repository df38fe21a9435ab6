"""The audio branch that learns from the log-mel itself: records, model, weights, end to end."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from mater_tf.cli.main import main
from mater_tf.config import load_config
from mater_tf.data import records, schema
from mater_tf.errors import UserError
from mater_tf.models import MATER
from mater_tf.training import task

RNG = np.random.default_rng(5)
SMALL = dict(
    num_layers=1,
    d_model=8,
    num_heads=2,
    ff_dim=16,
    head_hidden_dim=8,
    audio_frontend="small",
    log_mel_frames=12,
)


def inputs(batch=2, windows=4):
    return {
        "audio_log_mel": RNG.normal(size=(batch, windows, 12, 64)).astype(np.float32),
        "audio_valid": np.array([[1, 1, 1, 0], [1, 1, 0, 0]], np.float32),
        "face_embedding": RNG.normal(size=(batch, windows, 4)).astype(np.float32),
        "face_valid": np.ones((batch, windows), np.float32),
    }


@pytest.mark.parametrize("training", [False, True])
def test_masked_windows_never_change_the_output(training):
    # dropout=0: in training mode the outputs are then deterministic, and what is tested is
    # the front end's batch norms, whose batch statistics must come from present windows only.
    model = MATER(6, 4, 5, num_windows=4, **SMALL, dropout=0.0)
    x = inputs()
    reference = model(x, training=training)
    changed = {k: v.copy() for k, v in x.items()}
    changed["audio_log_mel"][0, 3] = 50.0
    changed["audio_log_mel"][1, 2:] = -9.0
    again = model(changed, training=training)
    for key in reference:
        np.testing.assert_allclose(np.asarray(again[key]), np.asarray(reference[key]), atol=1e-6, err_msg=key)
    changed["audio_log_mel"][0, 0] += 3.0 * RNG.normal(size=(12, 64)).astype(np.float32)
    assert not np.allclose(
        np.asarray(model(changed, training=training)["audio_logits"]), np.asarray(reference["audio_logits"])
    )


def test_padded_windows_never_reach_the_batch_norm_statistics():
    """A training step's logits and the moving statistics it leaves ignore padded windows."""
    model = MATER(6, 4, 5, num_windows=4, **SMALL, dropout=0.0)
    x = inputs()
    changed = {k: v.copy() for k, v in x.items()}
    changed["audio_log_mel"][0, 3] = 50.0 + RNG.normal(size=(12, 64)).astype(np.float32)
    frontend = model.get_layer("audio_frontend").frontend
    batch_norms = [frontend.get_layer(f"bn{i}") for i in (1, 2, 3)]
    start = [w.numpy().copy() for w in model.weights]
    reference = np.asarray(model(x, training=True)["logits"])
    moved = [bn.moving_variance.numpy().copy() for bn in batch_norms]
    assert not np.allclose(moved[0], 1.0)  # the step did update them
    model.set_weights(start)
    again = np.asarray(model(changed, training=True)["logits"])
    np.testing.assert_allclose(again, reference, atol=1e-5)
    for bn, before in zip(batch_norms, moved):
        np.testing.assert_allclose(bn.moving_variance.numpy(), before, rtol=1e-5, err_msg=bn.name)
    # The statistics are those of the present windows: bn1 normalises conv1 of them alone.
    present = np.asarray(x["audio_valid"]).reshape(-1) > 0
    patches = np.asarray(x["audio_log_mel"]).reshape(-1, 12, 64)[present]
    normalised = np.asarray(frontend.get_layer("band_normalization")(patches))
    conv1 = np.asarray(frontend.get_layer("conv1")(normalised[..., None]))
    model.set_weights(start)
    model(changed, training=True)
    momentum = batch_norms[0].momentum
    np.testing.assert_allclose(
        batch_norms[0].moving_mean.numpy(), (1 - momentum) * conv1.mean(axis=(0, 1, 2)), rtol=1e-3, atol=1e-6
    )


@pytest.mark.parametrize("training", [False, True])
def test_window_front_end_alone_ignores_absent_windows(training):
    from mater_tf.layers import WindowFrontend

    frontend = WindowFrontend("small", 12, normalization="patch")
    patches, valid = inputs()["audio_log_mel"], np.array([[1, 1, 1, 0], [1, 1, 0, 0]], np.float32)
    reference = np.asarray(frontend(patches, valid, training=training))
    assert reference.shape == (2, 4, 64)
    changed = patches.copy()
    changed[valid == 0] = 30.0
    again = np.asarray(frontend(changed, valid, training=training))
    np.testing.assert_allclose(again[valid == 1], reference[valid == 1], atol=1e-5)
    # Without `valid` every window is present, and then the absent ones' content counts in training.
    everything = np.asarray(frontend(changed, training=training))
    np.testing.assert_allclose(
        everything, np.asarray(frontend(changed, np.ones_like(valid), training=training))
    )
    assert training == (not np.allclose(everything[valid == 1], reference[valid == 1], atol=1e-5))


def test_front_end_output_meets_the_positional_encoding_unscaled():
    """The sqrt(d_model) scale is for the l2-normalised embeddings; the small front end's
    batch-normalised output already projects to the PE's order, so it is left unscaled."""
    keras.utils.set_random_seed(0)
    sizes = dict(SMALL, d_model=64, num_heads=4, dropout=0.0)  # experiments/logmel/ravdess_audio.yaml's width
    scaled = MATER(6, 4, 5, num_windows=4, **sizes)
    unscaled = MATER(6, 4, 5, num_windows=4, embedding_scale="none", **sizes)
    for layer in scaled.layers:  # by name: the scale changes the layers' topological order
        unscaled.get_layer(layer.name).set_weights(layer.get_weights())
    x = inputs()
    x["face_embedding"] /= np.linalg.norm(x["face_embedding"], axis=-1, keepdims=True)

    def added_to_the_encoding(model, modality):
        pe_input = model.get_layer(f"{modality}_positional_encoding").input
        values = np.asarray(keras.Model(model.inputs, pe_input)(x, training=True))
        return values[np.asarray(x[f"{modality}_valid"]) > 0]

    audio = added_to_the_encoding(scaled, "audio")
    np.testing.assert_allclose(audio, added_to_the_encoding(unscaled, "audio"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        added_to_the_encoding(scaled, "face"),
        8.0 * added_to_the_encoding(unscaled, "face"),
        rtol=1e-4,
        atol=1e-6,
    )
    ratio = np.sqrt(np.mean(audio**2)) / np.sqrt(0.5)  # the PE's RMS is 1/sqrt(2)
    assert 0.3 < ratio < 3.0


def test_front_end_trains_end_to_end_and_saves(tmp_path):
    model = MATER(6, 4, 5, num_windows=4, **SMALL)
    x, labels = inputs(), np.array([1, 3])
    model.compile(
        optimizer="adam",
        loss={
            k: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            for k in ("logits", "audio_logits", "face_logits")
        },
    )
    frontend = model.get_layer("audio_frontend").frontend
    before = frontend.get_layer("conv1").get_weights()[0].copy()
    model.fit(x, {k: labels for k in ("logits", "audio_logits", "face_logits")}, epochs=1, verbose=0)
    assert not np.allclose(
        before, frontend.get_layer("conv1").get_weights()[0]
    )  # the gradient reached the convs
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert reloaded.get_config()["audio_frontend"] == "small"
    np.testing.assert_allclose(np.asarray(reloaded(x)["logits"]), np.asarray(model(x)["logits"]), atol=1e-5)


def test_front_end_weights_keep_the_layout_of_earlier_saves(tmp_path):
    """`.keras` files address a nested model's weights by class name: the masked batch
    norms must file theirs where the plain ones of earlier saves did, or those won't load."""
    import io
    import zipfile

    import h5py

    MATER(6, 4, 5, num_windows=4, **SMALL).save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        stored = []
        weights.visititems(lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None)
    prefix = "layers/window_frontend/frontend/layers/"
    assert {name.split("/vars")[0][len(prefix) :] for name in stored if name.startswith(prefix)} == {
        "normalization", "conv2d", "conv2d_1", "conv2d_2",
        "batch_normalization", "batch_normalization_1", "batch_normalization_2",
    }  # fmt: skip


def test_log_mel_patches_round_trip_through_records(tmp_path):
    patches = RNG.normal(size=(3, 12, 64)).astype(np.float32)
    clip = schema.ClipRecord(
        "c",
        "test",
        "s",
        1,
        "b",
        1.5,
        0.5,
        np.ones((3, 5), np.float32),
        np.zeros((3, 1), np.float32),
        np.array([1, 1, 0]),
        np.zeros(3, np.int64),
        np.zeros(3, np.int64),
        audio_log_mel=patches,
    )
    records.write_shards([clip], tmp_path)
    index = records.index_records(tmp_path)
    assert index.log_mel_frames == 12
    parsed = schema.parse_serialized(
        tf.constant(schema.to_sequence_example(clip).SerializeToString()), 5, 1, 12
    )
    np.testing.assert_array_equal(parsed["audio_log_mel"].numpy(), patches)
    batch, _ = next(
        iter(records.make_dataset(index, ["s"], ["audio"], 1, training=False, audio_log_mel=True))
    )
    assert set(batch) == {"audio_log_mel", "audio_valid"} and batch["audio_log_mel"].shape == (1, 3, 12, 64)
    plain = dict(vars(clip), audio_log_mel=None)
    records.write_shards([schema.ClipRecord(**plain)], tmp_path / "plain")
    with pytest.raises(UserError, match="--keep-log-mel"):
        records.make_dataset(
            records.index_records(tmp_path / "plain"), ["s"], ["audio"], 1, False, audio_log_mel=True
        )


@pytest.mark.parametrize("frontend", ["small", "stats"])
def test_band_normalization_takes_the_training_windows_statistics(tmp_path, frontend):
    windows = RNG.normal(loc=3.0, scale=2.0, size=(4, 3, 12, 64)).astype(np.float32)
    valid = np.array([[1, 1, 0], [1, 1, 1], [1, 0, 0], [1, 1, 1]])
    windows[valid == 0] = 1000.0  # absent windows must not move the statistics
    clips = [
        schema.ClipRecord(
            f"c{i}", "test", "s" if i < 3 else "t", i % 2, "b", 1.5, 0.5,
            np.ones((3, 5), np.float32), np.zeros((3, 1), np.float32), valid[i],
            np.zeros(3, np.int64), np.zeros(3, np.int64), audio_log_mel=windows[i],
        )
        for i in range(4)
    ]  # fmt: skip
    records.write_shards(clips, tmp_path / "records")
    index = records.index_records(tmp_path / "records")
    config = load_config(
        "quickstart",
        ["model.modalities=audio", f"model.audio_frontend={frontend}", "model.log_mel_normalization=band"],
    )
    train = records.make_dataset(index, ["s"], ["audio"], 2, training=True, audio_log_mel=True)
    model = task.Task(config, index).build_model(train)
    layer = model.get_layer("audio_frontend").frontend.get_layer("band_normalization")
    seen = windows[:3][valid[:3] == 1]  # training subject s only: [windows, frames, 64]
    np.testing.assert_allclose(np.ravel(layer.mean), seen.mean(axis=(0, 1)), rtol=1e-4)
    np.testing.assert_allclose(np.ravel(layer.variance), seen.var(axis=(0, 1)), rtol=1e-3)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    reloaded_layer = reloaded.get_layer("audio_frontend").frontend.get_layer("band_normalization")
    np.testing.assert_allclose(np.ravel(reloaded_layer.mean), np.ravel(layer.mean))


def test_models_saved_before_the_normalization_option_keep_patch_standardization():
    config = MATER(6, 4, 5, num_windows=4, **SMALL).get_config()
    del config["log_mel_normalization"]
    restored = MATER.from_config(config)
    assert restored.get_layer("audio_frontend").normalization == "patch"
    assert restored.get_layer("audio_frontend").frontend.get_layer("standardize")


def test_vggish_weights_fill_the_front_end(write_tf1_checkpoint):
    from mater_tf.features.vggish import CHECKPOINT_SHAPES, CONV_LAYERS

    conv_scopes = {scope: CHECKPOINT_SHAPES[scope] for scope in CONV_LAYERS.values()}
    values = {
        f"{scope}/weights": RNG.normal(size=shape).astype(np.float32) * 0.01
        for scope, shape in conv_scopes.items()
    }
    values.update(
        {f"{scope}/biases": np.full(shape[-1], 0.1, np.float32) for scope, shape in conv_scopes.items()}
    )
    path = write_tf1_checkpoint(values)
    config = load_config(
        "quickstart",
        [
            "model.modalities=audio",
            "model.audio_frontend=vggish",
            f"model.audio_frontend_weights={path}",
            "model.audio_frontend_trainable=false",
            "model.log_mel_normalization=none",
            "model.num_layers=1",
            "model.d_model=8",
            "model.num_heads=2",
        ],
    )
    index = records.RecordIndex((), 4, 1, 1, ("a", "b"), "x", 0.5, "", "", 50, (), (), ())
    model = task.Task(config, index).build_model()
    frontend = model.get_layer("audio_frontend").frontend
    np.testing.assert_array_equal(
        frontend.get_layer("conv3_2").get_weights()[0], values["vggish/conv3/conv3_2/weights"]
    )
    assert not frontend.trainable and frontend.get_layer("conv1").trainable_weights == []


@pytest.mark.slow
def test_train_on_real_speech_with_the_front_end(shared_dir, tmp_path, cli_command):
    out = tmp_path / "records"
    # Eight actors, one clip of each of the eight emotions: real speech, every class in every fold,
    # an eighth of the 960-clip corpus to prepare.
    root = tmp_path / "ravdess"
    for actor in range(1, 9):
        (root / f"Actor_{actor:02d}").mkdir(parents=True)
        for emotion in range(1, 9):
            name = f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav"
            source = shared_dir / "data" / "RAVDESS-dev-16k" / f"Actor_{actor:02d}" / name
            (root / f"Actor_{actor:02d}" / name).symlink_to(source)
    assert (
        main(
            [
                "prepare",
                "--corpus",
                "ravdess",
                "--root",
                str(root),
                "--out",
                str(out),
                "--modalities",
                "audio",
                "--keep-log-mel",
            ]
        )
        == 0
    )
    assert records.index_records(out).log_mel_frames == 48  # 0.5 s windows: the frames whose 25 ms lie inside
    sets = [
        f"data.source={out}",
        "model.modalities=audio",
        "model.audio_frontend=small",
        "model.log_mel_normalization=band",
        "cv.num_folds=4",
        "model.num_layers=1",
        "model.d_model=16",
        "model.num_heads=2",
        "train.epochs=1",
        "train.batch_size=32",
    ]
    assert main(cli_command("train", tmp_path / "runs", "r", sets)) == 0
    run = tmp_path / "runs" / "quickstart" / "r"
    metrics = json.loads((run / "metrics.json").read_text())
    # 8 actors in 4 folds: fold 0 tests actors 01-02, 8 clips each.
    assert metrics["test_subjects"] == ["01", "02"] and metrics["test"]["audio"]["num_clips"] == 16
    reloaded = keras.models.load_model(run / "model.keras")
    assert reloaded.audio_frontend == "small"
    served = tf.saved_model.load(str(run / "export"))
    examples = [s for s in tf.data.TFRecordDataset(sorted(str(p) for p in out.glob("*.tfrecord"))).take(2)]
    probabilities = served.signatures["serve_examples"](examples=tf.stack(examples))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    clip = (
        shared_dir
        / "data"
        / "RAVDESS"
        / "Audio_Speech_Actors_01-24"
        / "Actor_02"
        / "03-01-05-01-01-01-02.wav"
    )
    assert main(["predict", str(clip), "--model", str(run), "--out", str(tmp_path / "predictions")]) == 0
    result = json.loads((tmp_path / "predictions" / "03-01-05-01-01-01-02.json").read_text())
    assert sum(result["audio_probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert any("audio_probabilities" in window for window in result["windows"])


def test_clip_normalization_standardizes_each_band_over_the_clips_present_windows():
    from mater_tf.layers import clip_standardize

    patches = RNG.normal(3.0, 2.0, size=(2, 4, 12, 64)).astype(np.float32)
    valid = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], np.float32)
    out = np.asarray(clip_standardize(patches, valid))
    for clip, present in ((0, 3), (1, 1)):
        frames = patches[clip, :present].reshape(-1, 64)
        expected = (frames - frames.mean(0)) / np.sqrt(frames.var(0) + 1e-3)
        np.testing.assert_allclose(out[clip, :present].reshape(-1, 64), expected, rtol=1e-4, atol=1e-4)
    # No `valid`: every window counts.
    frames = patches[0].reshape(-1, 64)
    np.testing.assert_allclose(
        np.asarray(clip_standardize(patches))[0].reshape(-1, 64),
        (frames - frames.mean(0)) / np.sqrt(frames.var(0) + 1e-3),
        rtol=1e-4,
        atol=1e-4,
    )
    # A clip with no present window passes unchanged (not divided by sqrt(epsilon)).
    nothing = np.zeros_like(valid)
    np.testing.assert_allclose(np.asarray(clip_standardize(patches, nothing)), patches, rtol=1e-6)


@pytest.mark.parametrize("training", [False, True])
def test_clip_normalization_removes_a_speakers_spectral_colouring(training):
    """A per-band level and gain that is the same over the clip (a voice's or a microphone's
    colouring) changes nothing after "clip"; the absent windows' content changes nothing."""
    from mater_tf.layers import WindowFrontend

    frontend = WindowFrontend("small", 12, normalization="clip")
    patches = RNG.normal(size=(2, 4, 12, 64)).astype(np.float32)
    valid = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], np.float32)
    reference = np.asarray(frontend(patches, valid, training=training))
    coloured = patches * RNG.uniform(0.5, 2.0, size=(1, 1, 1, 64)) + RNG.normal(0, 5, size=(1, 1, 1, 64))
    coloured[valid == 0] = 40.0
    again = np.asarray(frontend(coloured.astype(np.float32), valid, training=training))
    np.testing.assert_allclose(again[valid == 1], reference[valid == 1], rtol=2e-3, atol=2e-3)  # epsilon
    # The band normalisation, set from real windows, keeps the colouring (the level is a cue).
    band = WindowFrontend("small", 12, normalization="band")
    band.adapt(patches[valid == 1])
    assert not np.allclose(
        np.asarray(band(coloured.astype(np.float32), valid))[valid == 1],
        np.asarray(band(patches, valid))[valid == 1],
        atol=2e-4,
    )


def test_front_end_filters_and_time_pooling_set_its_layers_and_survive_a_save(tmp_path):
    from mater_tf.layers import WindowFrontend

    frontend = WindowFrontend("small", 12, filters=(8, 16), pooling="time")
    convs = [layer for layer in frontend.frontend.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [8, 16]
    patches, valid = inputs()["audio_log_mel"], np.ones((2, 4), np.float32)
    out = np.asarray(frontend(patches, valid))
    # Two 2x2 pools: 12 frames -> 3, 64 bands -> 16; "time" keeps the 16 bands of 16 channels.
    assert out.shape == (2, 4, 16 * 16)
    last = frontend.frontend.get_layer("pool2").output
    feature_map = np.asarray(
        keras.Model(frontend.frontend.inputs, last)([patches.reshape(-1, 12, 64), valid.ravel()])
    )
    np.testing.assert_allclose(
        out.reshape(8, -1), feature_map.mean(axis=1).reshape(8, -1), rtol=1e-5, atol=1e-6
    )

    model = MATER(
        6, 4, 5, num_windows=4, **dict(SMALL, audio_frontend_filters=(8, 16), audio_frontend_pooling="time")
    )
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert reloaded.get_layer("audio_frontend").filters == (8, 16)
    assert reloaded.get_layer("audio_frontend").pooling == "time"
    x = inputs()
    np.testing.assert_allclose(np.asarray(reloaded(x)["logits"]), np.asarray(model(x)["logits"]), atol=1e-5)


def test_band_stats_pooling_appends_each_bands_mean_and_std_over_time_and_survives_a_save(tmp_path):
    from mater_tf.layers import WindowFrontend

    frontend = WindowFrontend("small", 12, normalization="none", filters=(8, 16), pooling="band_stats")
    patches, valid = inputs()["audio_log_mel"], np.ones((2, 4), np.float32)
    out = np.asarray(frontend(patches, valid))
    assert out.shape == (2, 4, 16 + 3 * 64)
    last = frontend.frontend.get_layer("pool2").output
    feature_map = np.asarray(
        keras.Model(frontend.frontend.inputs, last)([patches.reshape(-1, 12, 64), valid.ravel()])
    )
    np.testing.assert_allclose(
        out[..., :16].reshape(8, 16), feature_map.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(out[..., 16:80], patches.mean(axis=2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[..., 80:144], patches.std(axis=2), rtol=1e-4, atol=1e-5)
    change = np.abs(np.diff(patches, axis=2)).mean(axis=2)
    np.testing.assert_allclose(out[..., 144:], change, rtol=1e-4, atol=1e-5)

    model = MATER(6, 4, 5, num_windows=4, **dict(SMALL, audio_frontend_pooling="band_stats"))
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert reloaded.get_layer("audio_frontend").pooling == "band_stats"
    x = inputs()
    np.testing.assert_allclose(np.asarray(reloaded(x)["logits"]), np.asarray(model(x)["logits"]), atol=1e-5)


def test_stats_front_end_gives_each_windows_band_statistics():
    from mater_tf.layers import WindowFrontend

    frontend = WindowFrontend("stats", 12, normalization="none")
    patches, valid = inputs()["audio_log_mel"], np.ones((2, 4), np.float32)
    out = np.asarray(frontend(patches, valid))
    expected = np.concatenate(
        [patches.mean(axis=2), patches.std(axis=2), np.abs(np.diff(patches, axis=2)).mean(axis=2)], axis=-1
    )
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert not [layer for layer in frontend.frontend.layers if isinstance(layer, keras.layers.Conv2D)]
    # A window of one log-mel frame (prepare allows 0.025 s windows) has no change: 0, not NaN.
    single = np.asarray(WindowFrontend("stats", 1, normalization="none")(patches[:, :, :1], valid))
    np.testing.assert_allclose(
        single, np.concatenate([patches[:, :, 0], 0 * patches[:, :, 0], 0 * patches[:, :, 0]], -1)
    )


def test_band_statistics_are_computed_in_the_order_asked_and_survive_a_save(tmp_path):
    from mater_tf.layers import WindowFrontend

    patches, valid = inputs()["audio_log_mel"], np.ones((2, 4), np.float32)
    frontend = WindowFrontend("stats", 12, normalization="none", statistics=("change_std", "mean"))
    out = np.asarray(frontend(patches, valid))
    assert out.shape == (2, 4, 2 * 64)
    np.testing.assert_allclose(out[..., :64], np.diff(patches, axis=2).std(axis=2), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[..., 64:], patches.mean(axis=2), rtol=1e-5, atol=1e-5)
    # A band that rises steadily has a change spread of 0, one that moves in bursts does not.
    ramp = np.broadcast_to(np.arange(12, dtype=np.float32)[:, None], (1, 1, 12, 64)).copy()
    burst = np.zeros_like(ramp)
    burst[..., 6:, :] = 11.0
    spread = np.asarray(frontend(np.concatenate([ramp, burst]), np.ones((2, 1), np.float32)))[:, 0, :64]
    np.testing.assert_allclose(spread[0], 0.0, atol=1e-5)
    assert (spread[1] > 3.0).all()
    with pytest.raises(ValueError, match="distinct names from"):
        WindowFrontend("stats", 12, statistics=("mean", "mean"))

    settings = dict(SMALL, audio_frontend="stats", band_statistics=("mean", "std", "change", "change_std"))
    model = MATER(6, 4, 5, num_windows=4, **settings)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert reloaded.get_layer("audio_frontend").statistics == ("mean", "std", "change", "change_std")
    x = inputs()
    np.testing.assert_allclose(np.asarray(reloaded(x)["logits"]), np.asarray(model(x)["logits"]), atol=1e-5)


def test_modulation_is_each_band_groups_contour_spectrum_over_four_rate_ranges():
    from mater_tf.layers import WindowFrontend

    frontend = WindowFrontend("stats", 48, normalization="none", statistics=("modulation",))
    patches = RNG.normal(size=(2, 3, 48, 64)).astype(np.float32)
    out = np.asarray(frontend(patches, np.ones((2, 3), np.float32)))
    assert out.shape == (2, 3, 64)
    # By hand: 16 groups of 4 bands; at 100 frames/s over 48 frames the rfft bins are 2.08 Hz
    # apart, so 1.5-5 Hz is bins 1-2, 5-9 Hz 3-4, 9-18 Hz 5-8 and 18-50 Hz 9-23.
    contour = patches.reshape(2, 3, 48, 16, 4).mean(-1)
    spectrum = np.abs(np.fft.rfft(contour - contour.mean(2, keepdims=True), axis=2))
    ranges = [spectrum[:, :, a:b].mean(2) for a, b in ((1, 3), (3, 5), (5, 9), (9, 24))]
    expected = np.log(np.stack(ranges, -1) + 1e-3).reshape(2, 3, 64)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # A group whose loudness rises and falls 4 times a second has its rhythm in the first range
    # only; a steady group has none anywhere.
    t = np.arange(48) / 100.0
    beat = np.zeros((1, 1, 48, 64), np.float32)
    beat[..., 8:12] = np.sin(2 * np.pi * (100 / 48 * 2) * t)[:, None]
    rhythm = np.asarray(frontend(beat, np.ones((1, 1), np.float32)))[0, 0].reshape(16, 4)
    assert rhythm[2, 0] > np.log(1.0) and (rhythm[2, 1:] < np.log(0.01)).all()
    np.testing.assert_allclose(np.delete(rhythm, 2, axis=0), np.log(1e-3), atol=1e-3)
    # Too short a window for a range (one frame: no rate at all) gives the floor, not NaN.
    single = np.asarray(
        WindowFrontend("stats", 1, normalization="none", statistics=("modulation",))(
            patches[:, :, :1], np.ones((2, 3), np.float32)
        )
    )
    np.testing.assert_allclose(single, np.log(1e-3), atol=1e-6)


def test_the_config_builds_the_band_statistics_it_names():
    config = load_config(
        "quickstart",
        ["model.audio_frontend=stats", "model.modalities=audio", "model.band_statistics=mean,change_std"],
    )
    from mater_tf.models import build_model

    model = build_model(
        config.model, audio_dim=6, face_dim=4, num_classes=5, num_windows=4, log_mel_frames=12
    )
    assert model.get_layer("audio_frontend").statistics == ("mean", "change_std")


@pytest.mark.parametrize("num_layers", [0, 1])
def test_a_stats_branch_with_windows_side_by_side_ignores_absent_windows_and_survives_a_save(
    num_layers, tmp_path
):
    settings = dict(
        SMALL, audio_frontend="stats", num_layers=num_layers, window_pooling="concat", dropout=0.0
    )
    model = MATER(6, 4, 5, num_windows=4, **settings)
    assert model.get_layer("audio_pooling").output.shape == (None, 4 * 8)
    assert bool(model._attention_scores) == bool(num_layers)
    x = inputs()
    reference = model(x)
    changed = {k: v.copy() for k, v in x.items()}
    changed["audio_log_mel"][0, 3] = 50.0
    changed["audio_log_mel"][1, 2:] = -9.0
    np.testing.assert_allclose(
        np.asarray(model(changed)["logits"]), np.asarray(reference["logits"]), atol=1e-6
    )
    # Which window says what matters: swapping two present windows changes the clip's logits.
    swapped = {k: v.copy() for k, v in x.items()}
    swapped["audio_log_mel"][0, [0, 1]] = x["audio_log_mel"][0, [1, 0]]
    assert not np.allclose(
        np.asarray(model(swapped)["audio_logits"])[0], np.asarray(reference["audio_logits"])[0]
    )
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert reloaded.window_pooling == "concat" and reloaded.audio_frontend == "stats"
    np.testing.assert_allclose(np.asarray(reloaded(x)["logits"]), np.asarray(reference["logits"]), atol=1e-5)


@pytest.mark.parametrize("window_pooling", ["mean", "concat"])
def test_an_export_takes_any_window_count_unless_its_head_reads_the_windows_side_by_side(
    window_pooling, tmp_path
):
    from mater_tf.serving.export import export_saved_model

    settings = dict(SMALL, audio_frontend="stats", window_pooling=window_pooling)
    model = MATER(6, 4, 5, num_windows=4, modalities=("audio",), **settings)
    export_saved_model(model, tmp_path / "export", list("abcde"), {"num_windows": 4})
    serving = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    specs = serving.structured_input_signature[1]
    windows = 4 if window_pooling == "concat" else None
    assert specs["audio_log_mel"].shape.as_list() == [None, windows, 12, 64]
    assert specs["audio_valid"].shape.as_list() == [None, windows]
    x = inputs()
    served = serving(audio_log_mel=tf.constant(x["audio_log_mel"]), audio_valid=tf.constant(x["audio_valid"]))
    expected = tf.nn.softmax(model({k: x[k] for k in ("audio_log_mel", "audio_valid")})["logits"])
    np.testing.assert_allclose(served["probabilities"].numpy(), expected.numpy(), atol=1e-5)
