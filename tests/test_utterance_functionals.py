"""The voice descriptors (tf.signal) and the utterance functionals the audio branch reads.

Checked against numpy computations written here from the definitions (not from the code
under test), on real speech, and by what they must find (a tone's pitch, noise unvoiced).
"""

import json

import keras
import numpy as np
import pytest
from scipy.fft import dct
from scipy.io import wavfile

from mater_tf.cli.main import main
from mater_tf.config import load_config
from mater_tf.data import records, schema
from mater_tf.data.extraction import build_extractor
from mater_tf.errors import UserError
from mater_tf.features import voice_descriptors as vd
from mater_tf.features.log_mel import LOG_OFFSET, log_mel
from mater_tf.layers import utterance_functionals as uf
from mater_tf.models import MATER, log_mel_input

RNG = np.random.default_rng(7)
FRAMES = 48  # a 0.5 s window's log-mel frames
SPAN = 400 + 160 * (FRAMES - 1)


def dev_clip(shared_dir, name="03-01-05-02-01-01-03.wav"):
    rate, samples = wavfile.read(shared_dir / "data" / "RAVDESS-dev-16k" / f"Actor_{name[-6:-4]}" / name)
    assert rate == 16000
    return samples.astype(np.float32) / 32768.0


def numpy_descriptors(samples, frames=FRAMES):
    """The descriptors from their definitions, in float64 numpy."""
    need = (frames - 1) * 160 + 640
    x = np.zeros(need)
    x[: min(len(samples), need)] = samples[:need]
    hann = lambda n: 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # noqa: E731 - periodic Hann
    frame = x[np.arange(400)[None] + 160 * np.arange(frames)[:, None]]
    power = np.abs(np.fft.rfft(frame * hann(400), 512)) ** 2 + 1e-10
    freqs = np.fft.rfftfreq(512, 1 / 16000)
    share = power / power.sum(1, keepdims=True)
    centroid = (share * freqs).sum(1)
    deviation = freqs[None] - centroid[:, None]
    spread = np.sqrt((share * deviation**2).sum(1)) + 1e-6
    rolloffs = [freqs[np.minimum((np.cumsum(share, 1) < q).sum(1), 256)] for q in (0.25, 0.5, 0.75, 0.9)]
    slope = np.polyfit(freqs, np.log(power).T, 1)[0]
    pitch = x[np.arange(640)[None] + 160 * np.arange(frames)[:, None]]
    pitch = pitch - pitch.mean(1, keepdims=True)
    autocorrelation = np.fft.irfft(np.abs(np.fft.rfft(pitch * hann(640), 2048)) ** 2, 2048)[:, :640]
    autocorrelation /= autocorrelation[:, :1] + 1e-10
    lag = 32 + autocorrelation[:, 32:266].argmax(1)
    strength = np.clip(autocorrelation[np.arange(frames), lag], 1e-3, 0.999)
    signs = frame >= 0
    return np.stack(
        [
            np.log(np.sqrt((frame**2).mean(1)) + 1e-5),
            (signs[:, 1:] != signs[:, :-1]).mean(1),
            centroid,
            spread,
            (share * deviation**3).sum(1) / spread**3,
            (share * deviation**4).sum(1) / spread**4,
            -(share * np.log(share)).sum(1) / np.log(257),
            *rolloffs,
            slope,
            np.log(power[:, (freqs >= 250) & (freqs <= 650)].sum(1)),
            np.log(power[:, (freqs >= 1000) & (freqs <= 4000)].sum(1)),
            strength,
            10 * np.log10(strength / (1 - strength)),
            np.log2(16000 / lag),
            (strength > 0.45).astype(float),
        ],
        1,
    )


def numpy_functionals(tracks):
    """[n, K] -> [15 x K]: mean, std, skewness, excess kurtosis, percentiles 1/25/50/75/99, the
    1-99 and 25-75 ranges, the linear trend's slope and error over time 0..1, and where the
    maximum and minimum first fall (0..1)."""
    n = len(tracks)
    if n == 0:
        return np.zeros(15 * tracks.shape[1])
    time = np.arange(n) / max(n - 1, 1)
    mean = tracks.mean(0)
    centred = tracks - mean
    variance = (centred**2).mean(0)
    q = np.percentile(tracks, [1, 25, 50, 75, 99], axis=0)
    time_centred = time - time.mean()
    slope = (time_centred[:, None] * centred).sum(0) / max((time_centred**2).sum(), 1e-12)
    error = np.sqrt(((centred - slope * time_centred[:, None]) ** 2).mean(0))
    return np.concatenate(
        [
            mean,
            np.sqrt(variance + 1e-12),
            (centred**3).mean(0) / (variance + 1e-12) ** 1.5,
            (centred**4).mean(0) / (variance + 1e-12) ** 2 - 3,
            *q,
            q[4] - q[0],
            q[3] - q[1],
            slope,
            error,
            tracks.argmax(0) / max(n - 1, 1),
            tracks.argmin(0) / max(n - 1, 1),
        ]
    )


def numpy_clip_functionals(patches, descriptors, valid):
    present = np.repeat(valid > 0, patches.shape[1])
    present &= patches.reshape(-1, 64).max(1) > np.log(0.01) + 1e-4  # not the padding past the end
    frames = patches.reshape(-1, 64)[present].astype(np.float64)
    waveform = descriptors.reshape(-1, descriptors.shape[-1])[present].astype(np.float64)
    power = np.exp(frames)
    share = power / power.sum(1, keepdims=True)
    band = np.arange(64)
    centroid = (share * band).sum(1, keepdims=True)
    log_mel_tracks = np.concatenate(
        [
            np.log(power.reshape(len(frames), 16, 4).sum(2)),
            dct(frames, type=2, norm="ortho", axis=1)[:, :14],
            np.log(power.sum(1, keepdims=True)),
            centroid,
            np.sqrt((share * (band - centroid) ** 2).sum(1, keepdims=True)),
            -(share * np.log(share + 1e-12)).sum(1, keepdims=True),
            np.sqrt((np.diff(frames, axis=0, prepend=frames[:1]) ** 2).mean(1, keepdims=True)),
        ],
        1,
    )
    gradient = lambda x: np.gradient(x, axis=0) if len(x) > 1 else np.zeros_like(x)  # noqa: E731
    tracks = np.concatenate([log_mel_tracks, waveform[:, :16]], 1)
    voiced = waveform[waveform[:, 17] > 0][:, [16, 15, 0]]  # log2 F0, HNR, log RMS over voiced frames
    return np.concatenate(
        [
            numpy_functionals(np.concatenate([tracks, gradient(tracks)], 1)),
            numpy_functionals(np.concatenate([voiced, gradient(voiced)], 1)),
            [len(voiced) / max(len(frames), 1)],
        ]
    )


def clip_windows(samples, windows=4):
    """[T, 48, 64] log-mel patches and [T, 48, 18] descriptors of a clip's first T windows."""
    patches, descriptors = [], []
    for window in range(windows):
        span = samples[window * 8000 : window * 8000 + SPAN]
        patch = np.full((FRAMES, 64), np.log(0.01), np.float32)
        frames = log_mel(span).numpy()[:FRAMES]
        patch[: len(frames)] = frames
        patches.append(patch)
        descriptors.append(vd.voice_descriptors(span, FRAMES).numpy())
    return np.stack(patches), np.stack(descriptors)


def test_the_descriptor_columns_agree_everywhere_they_are_named():
    assert vd.NUM_DESCRIPTORS == schema.VOICE_DESCRIPTORS == log_mel_input.VOICE_DESCRIPTORS == 18
    assert uf.LOG_MEL_FLOOR == pytest.approx(np.log(LOG_OFFSET), abs=1e-12)
    assert vd.DESCRIPTORS.index("log2_f0") == uf.F0_COLUMN
    assert vd.DESCRIPTORS.index("hnr_db") == uf.HNR_COLUMN == uf.WAVEFORM_TRACKS - 1
    assert vd.DESCRIPTORS.index("log_rms") == uf.LOG_RMS_COLUMN
    assert vd.DESCRIPTORS.index("voiced") == uf.VOICED_COLUMN


@pytest.mark.slow
def test_voice_descriptors_match_numpy_on_real_speech(shared_dir):
    samples = dev_clip(shared_dir)
    last = (len(samples) // 8000 - 1) * 8000  # a window at the clip's end: zero-padded
    voiced = {}
    for start in (16000, last):
        span = samples[start : start + SPAN]
        ours = vd.voice_descriptors(span, FRAMES).numpy()
        expected = numpy_descriptors(span.astype(np.float64))
        np.testing.assert_allclose(ours, expected, rtol=2e-3, atol=2e-3)
        voiced[start] = ours[:, -1].mean()
    assert voiced[16000] > 0.3 and voiced[last] < voiced[16000]  # the sentence, then its trailing pause


def test_voice_descriptors_find_a_voices_pitch_and_call_noise_unvoiced():
    time = np.arange(SPAN) / 16000
    voice = sum(np.sin(2 * np.pi * 180 * k * time) / k for k in range(1, 6)).astype(np.float32) * 0.3
    descriptors = vd.voice_descriptors(voice, FRAMES).numpy()
    full = descriptors[: FRAMES - 4]  # frames whose 40 ms lie inside the span
    column = {name: i for i, name in enumerate(vd.DESCRIPTORS)}
    np.testing.assert_allclose(2 ** full[:, column["log2_f0"]], 180.0, rtol=0.02)
    # (The Hann window's own taper keeps a pure tone's periodicity near 0.88: about 8.7 dB.)
    assert (full[:, column["voiced"]] == 1).all() and (full[:, column["hnr_db"]] > 8).all()
    noise = vd.voice_descriptors(RNG.uniform(-0.3, 0.3, SPAN).astype(np.float32), FRAMES).numpy()
    assert noise[:, column["voiced"]].mean() < 0.1 and np.median(noise[:, column["hnr_db"]]) < 0


@pytest.mark.slow
def test_utterance_functionals_match_numpy_on_real_speech(shared_dir):
    patches, descriptors = [], []
    for name in ("03-01-05-02-01-01-03.wav", "03-01-03-01-02-02-04.wav"):
        p, d = clip_windows(dev_clip(shared_dir, name))
        patches.append(p)
        descriptors.append(d)
    patches, descriptors = np.stack(patches), np.stack(descriptors)
    valid = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], np.float32)
    ours = uf.UtteranceFunctionals()(patches, descriptors, valid).numpy()
    assert ours.shape == (2, uf.output_size())
    for row in range(2):
        expected = numpy_clip_functionals(patches[row], descriptors[row], valid[row])
        close = np.isclose(ours[row], expected, rtol=2e-3, atol=2e-3)
        # Where two frames hold the same maximum up to float32 rounding, the first of them may
        # differ: the positions of extremes may disagree, nothing else.
        positions = np.zeros(uf.output_size(), bool)
        main_tracks = 2 * (uf.LOG_MEL_DESCRIPTORS + uf.WAVEFORM_TRACKS)
        positions[13 * main_tracks : 15 * main_tracks] = True
        voiced = 15 * main_tracks
        positions[voiced + 13 * 6 : voiced + 15 * 6] = True
        assert close[~positions].all(), np.flatnonzero(~close & ~positions)[:10]
        assert close[positions].mean() > 0.97


def test_the_padding_past_a_clips_end_is_not_counted_as_voice():
    """A present window's frames past the end hold the log-mel floor; their descriptors (of the
    zero padding) must not reach the functionals, or the clip's length would pose as its voice."""
    patches = RNG.normal(-2, 1, (1, 4, 6, 64)).astype(np.float32)
    descriptors = RNG.normal(0, 1, (1, 4, 6, 18)).astype(np.float32)
    valid = np.ones((1, 4), np.float32)
    patches[0, 3, 2:] = np.log(LOG_OFFSET)  # the clip ends inside window 3
    layer = uf.UtteranceFunctionals()
    reference = layer(patches, descriptors, valid).numpy()
    descriptors[0, 3, 2:] = -11.5  # log RMS of silence, and the rest of the padding's values
    np.testing.assert_array_equal(layer(patches, descriptors, valid).numpy(), reference)
    descriptors[0, 3, 1] = -11.5  # a frame that holds sound does count
    assert not np.array_equal(layer(patches, descriptors, valid).numpy(), reference)


def test_absent_windows_change_no_functional_and_a_clip_without_any_gives_zeros():
    patches = RNG.normal(-2, 1, (2, 4, 6, 64)).astype(np.float32)
    descriptors = RNG.normal(0, 1, (2, 4, 6, 18)).astype(np.float32)
    descriptors[..., 17] = RNG.integers(0, 2, (2, 4, 6))
    valid = np.array([[1, 1, 1, 0], [0, 0, 0, 0]], np.float32)
    layer = uf.UtteranceFunctionals()
    reference = layer(patches, descriptors, valid).numpy()
    patches[0, 3], descriptors[0, 3] = 80.0, -1e6
    np.testing.assert_array_equal(layer(patches, descriptors, valid).numpy()[0], reference[0])
    assert np.isfinite(reference).all() and not reference[1].any()


def stats_model(**options):
    return MATER(
        1,
        1,
        5,
        num_windows=4,
        modalities=("audio",),
        num_layers=1,
        d_model=8,
        num_heads=2,
        ff_dim=16,
        head_hidden_dim=8,
        audio_frontend="stats",
        log_mel_frames=6,
        window_pooling="concat",
        utterance_functionals=True,
        **options,
    )


@pytest.mark.parametrize("training", [False, True])
def test_a_model_with_utterance_functionals_ignores_absent_windows_and_survives_a_save(training, tmp_path):
    model = stats_model(dropout=0.0, ensemble=2)
    x = {
        "audio_log_mel": RNG.normal(-2, 1, (2, 4, 6, 64)).astype(np.float32),
        "audio_voice_descriptors": RNG.normal(0, 1, (2, 4, 6, 18)).astype(np.float32),
        "audio_valid": np.array([[1, 1, 1, 0], [1, 1, 0, 0]], np.float32),
    }
    model.get_layer("utterance_normalization").adapt(
        RNG.normal(0, 3, (8, uf.output_size())).astype(np.float32)
    )
    reference = model(x, training=training)
    changed = {key: value.copy() for key, value in x.items()}
    changed["audio_voice_descriptors"][0, 3] = 1e4
    changed["audio_log_mel"][1, 2:] = 9.0
    for key, value in model(changed, training=training).items():
        np.testing.assert_allclose(np.asarray(value), np.asarray(reference[key]), atol=1e-5, err_msg=key)
    # The functionals reach the logits: a changed present window's descriptors move them.
    changed["audio_voice_descriptors"][0, 0] += 5.0
    assert not np.allclose(model(changed, training=training)["logits"], reference["logits"])
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert reloaded.utterance_functionals and reloaded.utterance_l2 == model.utterance_l2
    np.testing.assert_allclose(reloaded(x)["logits"], model(x)["logits"], atol=1e-5)


def test_utterance_functionals_need_a_learned_audio_front_end():
    with pytest.raises(UserError, match="model.utterance_functionals reads the log-mel"):
        load_config("quickstart", ["model.utterance_functionals=true"])


@pytest.mark.slow
def test_prepare_and_predict_give_the_model_the_same_voice_descriptors(shared_dir, tmp_path, cli_command):
    """Records carry the descriptors; a model trained on them reads the same ones from a clip
    file at predict time (streamed windows) as prepare wrote; records without them are refused."""
    root = shared_dir / "data" / "RAVDESS" / "Audio_Speech_Actors_01-24"
    out = tmp_path / "records"
    argv = ["prepare", "--corpus", "ravdess", "--root", str(root), "--out", str(out), "--keep-log-mel"]
    assert main(argv + ["--modalities", "audio", "--windows", "4"]) == 0
    index = records.index_records(out)
    assert index.voice_descriptors and index.log_mel_frames == FRAMES
    clip = root / "Actor_02" / "03-01-05-01-01-01-02.wav"
    extractor, _ = build_extractor(4, 0.5, ["audio"], None, "logmel", keep_log_mel=True)
    from mater_tf.media import decode_audio
    from mater_tf.media.stream import waveform_windows

    waveform = decode_audio(clip)
    written = extractor.extract(clip, "c", waveform=waveform).record.audio_voice_descriptors
    windows = list(waveform_windows(waveform, 0.5, extractor.audio_span))[:4]
    streamed, _ = extractor.embed_windows(windows)
    np.testing.assert_array_equal(streamed.audio_voice_descriptors, written[: len(windows)])

    sets = [
        f"data.source={out}",
        "model.modalities=audio",
        "model.audio_frontend=stats",
        "model.utterance_functionals=true",
        "cv.num_folds=2",
        "cv.validation=false",
        "train.early_stopping_patience=0",
        "model.num_layers=1",
        "model.d_model=8",
        "model.num_heads=2",
        "train.epochs=2",
    ]
    assert main(cli_command("train", tmp_path / "runs", "r", sets)) == 0
    run = tmp_path / "runs" / "quickstart" / "r"
    assert main(["predict", str(clip), "--model", str(run), "--out", str(tmp_path / "predictions")]) == 0
    result = json.loads((tmp_path / "predictions" / "03-01-05-01-01-01-02.json").read_text())
    assert sum(result["audio_probabilities"].values()) == pytest.approx(1.0, abs=1e-3)

    # The same records without the descriptors (as prepared before they were written): refused.
    without = records.make_dataset(
        index, index.subject_ids, ["audio"], 4, training=False, audio_log_mel=True, voice_descriptors=True
    )
    assert without is not None
    old_index = records.RecordIndex(**{**index.__dict__, "voice_descriptors": False})
    with pytest.raises(UserError, match="prepare them again with mater-tf prepare --keep-log-mel"):
        records.make_dataset(
            old_index,
            index.subject_ids,
            ["audio"],
            4,
            training=False,
            audio_log_mel=True,
            voice_descriptors=True,
        )


def test_features_that_never_vary_in_training_stay_unscaled():
    from mater_tf.training.audio_frontend import standardize

    layer = keras.layers.Normalization(axis=-1)
    training = np.stack([RNG.normal(0, 2, 32), np.full(32, 3.0)], 1).astype(np.float32)
    standardize(layer, training)
    # Keras alone divides the constant column by 1e-7: one unit off becomes 1e7.
    np.testing.assert_allclose(layer(np.array([[0.0, 4.0]], np.float32)).numpy()[0, 1], 1.0, atol=1e-5)


def test_a_copy_of_a_trained_model_keeps_its_standardisation():
    """The multi-worker loop evaluates and exports a plain copy made with set_weights: its
    Normalization layers must use the copied statistics, not those they were built with."""
    from mater_tf.training.model_copy import finalize_normalizations

    trained, copy = stats_model(dropout=0.0), stats_model(dropout=0.0)
    trained.get_layer("utterance_normalization").adapt(
        RNG.normal(5, 3, (8, uf.output_size())).astype(np.float32)
    )
    x = {
        "audio_log_mel": RNG.normal(-2, 1, (2, 4, 6, 64)).astype(np.float32),
        "audio_voice_descriptors": RNG.normal(0, 1, (2, 4, 6, 18)).astype(np.float32),
        "audio_valid": np.ones((2, 4), np.float32),
    }
    copy.set_weights(trained.get_weights())
    finalize_normalizations(copy)
    np.testing.assert_allclose(copy(x)["logits"], trained(x)["logits"], atol=1e-5)


def write_records(folder, clips):
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    for number, clip in enumerate(clips):
        with tf.io.TFRecordWriter(str(folder / f"shard-{number}.tfrecord")) as writer:
            writer.write(schema.to_sequence_example(clip).SerializeToString())


def clip_record(clip_id, descriptors_width=18):
    return schema.ClipRecord(
        clip_id=clip_id,
        corpus="ravdess",
        subject="01",
        label=0,
        label_name="neutral",
        duration=1.0,
        window_seconds=0.5,
        audio_embedding=np.ones((2, 3), np.float32),
        face_embedding=np.zeros((2, 1), np.float32),
        audio_valid=np.ones(2, np.int64),
        face_valid=np.zeros(2, np.int64),
        face_frames_found=np.zeros(2, np.int64),
        audio_log_mel=np.zeros((2, 4, 64), np.float32),
        audio_voice_descriptors=None
        if descriptors_width is None
        else np.zeros((2, 4, descriptors_width), np.float32),
    )


def test_records_with_and_without_voice_descriptors_still_index_together(tmp_path):
    write_records(tmp_path / "mixed", [clip_record("a"), clip_record("b", descriptors_width=None)])
    index = records.index_records(tmp_path / "mixed")
    assert index.log_mel_frames == 4 and not index.voice_descriptors
    write_records(tmp_path / "new", [clip_record("a"), clip_record("b")])
    assert records.index_records(tmp_path / "new").voice_descriptors


def test_voice_descriptors_of_the_wrong_width_are_refused_naming_the_file(tmp_path):
    write_records(tmp_path / "bad", [clip_record("a", descriptors_width=17)])
    with pytest.raises(
        UserError, match=r"shard-0.tfrecord: record 0 does not follow.*audio/voice_descriptors"
    ):
        records.index_records(tmp_path / "bad")
