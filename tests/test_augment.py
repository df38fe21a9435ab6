"""On-the-fly log-mel augmentation: identity at inference, per-clip gain, contiguous SpecAugment masks."""

import math

import keras
import numpy as np
import pytest

from mater_tf.config import load_config
from mater_tf.errors import UserError
from mater_tf.layers.augment import LogMelAugment
from mater_tf.models import build_model

RNG = np.random.default_rng(0)
PATCHES = RNG.normal(size=(3, 4, 20, 64)).astype("float32") - 5.0  # [clips, windows, frames, bands]


def test_inference_is_the_identity():
    layer = LogMelAugment(
        gain_db=6.0, time_masks=2, time_mask_frames=5, freq_masks=2, freq_mask_bands=8, seed=1
    )
    np.testing.assert_array_equal(np.asarray(layer(PATCHES, training=False)), PATCHES)
    np.testing.assert_array_equal(np.asarray(layer(PATCHES)), PATCHES)


def test_gain_shifts_a_whole_clip_by_one_level_within_the_range():
    layer = LogMelAugment(gain_db=6.0, seed=3)
    shift = np.asarray(layer(PATCHES, training=True)) - PATCHES
    per_clip = shift.reshape(3, -1)
    np.testing.assert_allclose(per_clip, per_clip[:, :1] * np.ones_like(per_clip), atol=1e-5)  # one per clip
    limit = 6.0 * math.log(10.0) / 10.0  # 6 dB in natural-log energy
    assert np.all(np.abs(per_clip[:, 0]) <= limit + 1e-6)
    assert len(set(np.round(per_clip[:, 0], 5))) == 3


def _runs(flags):
    """Starts and lengths of the runs of True in a 1-d bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2] - edges[::2]))


@pytest.mark.parametrize("axis", ["time", "freq"])
def test_masks_are_contiguous_runs_filled_with_the_window_mean(axis):
    if axis == "time":
        layer = LogMelAugment(time_masks=1, time_mask_frames=6, seed=5)
    else:
        layer = LogMelAugment(freq_masks=1, freq_mask_bands=10, seed=5)
    out = np.asarray(layer(PATCHES, training=True))
    changed = out != PATCHES
    widths = []
    for clip in range(3):
        for window in range(4):
            mean = PATCHES[clip, window].mean()
            np.testing.assert_allclose(out[clip, window][changed[clip, window]], mean, rtol=1e-5)
            lines = changed[clip, window].all(axis=1 if axis == "time" else 0)  # whole frames / whole bands
            assert (changed[clip, window].any(axis=1 if axis == "time" else 0) == lines).all()
            runs = _runs(lines)
            assert len(runs) <= 1 and all(width <= (6 if axis == "time" else 10) for _, width in runs)
            widths += [width for _, width in runs]
    assert widths and max(widths) > 1  # something was masked, and more than single lines


def test_the_same_seed_gives_the_same_augmentation_and_the_config_round_trips():
    kwargs = dict(gain_db=3.0, time_masks=2, time_mask_frames=4, freq_masks=1, freq_mask_bands=6, seed=9)
    first = np.asarray(LogMelAugment(**kwargs)(PATCHES, training=True))
    again = np.asarray(LogMelAugment(**kwargs)(PATCHES, training=True))
    np.testing.assert_array_equal(first, again)
    layer = LogMelAugment(**kwargs)
    assert LogMelAugment.from_config(layer.get_config()).get_config() == layer.get_config()


def test_the_config_adds_augmentation_to_the_learned_front_end_only(tmp_path):
    sets = ["model.modalities=audio", "model.audio_frontend=small", "model.num_layers=1", "model.d_model=8"]
    sets += ["model.num_heads=2", "model.augment.time_masks=2", "model.augment.gain_db=3"]
    config = load_config("quickstart", sets)
    model = build_model(config.model, 4, 4, 3, 4, log_mel_frames=20)
    assert model.get_layer("log_mel_augment").time_masks == 2
    inputs = {"audio_log_mel": PATCHES, "audio_valid": np.ones((3, 4), "float32")}
    np.testing.assert_allclose(np.asarray(model(inputs)["logits"]), np.asarray(model(inputs)["logits"]))
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        np.asarray(reloaded(inputs)["logits"]), np.asarray(model(inputs)["logits"]), atol=1e-5
    )
    plain = build_model(load_config("quickstart", sets[:4]).model, 4, 4, 3, 4, log_mel_frames=20)
    assert "log_mel_augment" not in [layer.name for layer in plain.layers]
    with pytest.raises(UserError, match="model.augment needs a learned audio front end"):
        load_config("quickstart", ["model.augment.freq_masks=1"])


def test_freq_warp_stretches_each_clips_band_axis_by_one_factor_within_the_range():
    # On a ramp (each band's value = its index) the linear interpolation at a * b gives a * b
    # itself, up to the top band, so each clip's factor can be read off and every value checked.
    ramp = np.broadcast_to(np.arange(64, dtype="float32"), (5, 4, 20, 64)).copy()
    out = np.asarray(LogMelAugment(freq_warp=0.1, seed=2)(ramp, training=True))
    factors = out[:, 0, 0, 10] / 10.0
    assert np.all((factors >= 0.9 - 1e-6) & (factors <= 1.1 + 1e-6))
    assert len(set(np.round(factors, 4))) == 5  # one factor per clip, drawn anew for each
    expected = np.minimum(factors[:, None, None, None] * np.arange(64), 63.0)
    np.testing.assert_allclose(out, np.broadcast_to(expected, out.shape), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(LogMelAugment(freq_warp=0.1, seed=2)(ramp)), ramp)


def test_freq_warp_out_of_range_is_refused_with_the_fix():
    sets = ["model.modalities=audio", "model.audio_frontend=small", "model.augment.freq_warp=0.6"]
    with pytest.raises(UserError, match=r"model.augment.freq_warp=0.6 .*--set model.augment.freq_warp=0.1"):
        load_config("quickstart", sets)
