"""Audio files in TensorFlow ops: the WAV reader, the polyphase resampler, the tf.data stage."""

import threading

import numpy as np
import pytest
import tensorflow as tf

from mater_tf.features import log_mel
from mater_tf.media import decode_audio
from mater_tf.media.audio_graph import compiled_decoder, decode_audio_tensor, decoded_audio_dataset, read_wav
from mater_tf.media.resample import resample

PMX_WAV = "03-01-01-01-01-01-01.wav"  # ends in an odd-sized _PMX chunk: tf.audio.decode_wav alone rejects it


@pytest.fixture(scope="module")
def golden(shared_dir_module):
    return dict(np.load(shared_dir_module / "golden" / "vggish_reference.npz"))


def golden_file(shared_dir, golden, index):
    name = str(golden["frontend_files"][index])
    return shared_dir / "data" / "RAVDESS" / "Audio_Speech_Actors_01-24" / f"Actor_{name[-6:-4]}" / name


@pytest.mark.parametrize("index", [0, 1, 2])
def test_decoded_files_match_the_reference_resampler(shared_dir, golden, index):
    """The golden waveforms are the files read by soundfile, channels averaged, resampled by resampy."""
    ours = decode_audio(golden_file(shared_dir, golden, index))
    reference = golden[f"frontend{index}/waveform_16k"]
    assert len(ours) == len(reference)
    assert np.abs(ours - reference).max() < 1e-6  # measured: 1.2e-7 (float32 round-off)
    # So the file's own log-mel is the reference log-mel, at the golden tolerance.
    np.testing.assert_allclose(
        log_mel(ours).numpy(), golden[f"frontend{index}/log_mel"], atol=1e-4, rtol=1e-5
    )


@pytest.mark.parametrize(
    ("rate_in", "frequency"), [(44100, 440.0), (8000, 1000.0), (96000, 3000.0), (22050, 5000.0)]
)
def test_resampling_keeps_a_tone(rate_in, frequency):
    seconds = 0.5
    times = np.arange(int(rate_in * seconds)) / rate_in
    tone = (0.5 * np.sin(2 * np.pi * frequency * times)).astype(np.float32)
    resampled = resample(tone, rate_in, 16000).numpy()
    assert len(resampled) == len(tone) * 16000 // rate_in  # resampy's length
    expected = 0.5 * np.sin(2 * np.pi * frequency * np.arange(len(resampled)) / 16000)
    interior = slice(200, -200)  # away from the edges, where the filter runs into silence
    assert np.abs(resampled[interior] - expected[interior]).max() < 2e-3


def test_a_tone_above_the_new_nyquist_is_removed():
    rate_in = 48000
    tone = np.sin(2 * np.pi * 9000.0 * np.arange(rate_in) / rate_in).astype(np.float32)  # above 8 kHz
    assert np.abs(resample(tone, rate_in, 16000).numpy()[500:-500]).max() < 1e-3


def test_same_rate_is_untouched():
    waveform = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    np.testing.assert_array_equal(resample(waveform, 16000, 16000).numpy(), waveform)


def test_wav_with_an_odd_trailing_chunk_is_read_by_tensorflow(ravdess_speech):
    import av

    path = ravdess_speech(PMX_WAV)
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.audio.decode_wav(tf.io.read_file(str(path)))
    samples, rate = read_wav(tf.constant(str(path)))
    with av.open(str(path)) as container:  # FFmpeg's own reading of the same samples
        raw = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)])
    assert int(rate) == 48000
    np.testing.assert_array_equal(samples.numpy()[:, 0], raw / 32768.0)


def test_a_wav_tensorflow_cannot_read_falls_back_to_ffmpeg(tmp_path):
    from scipy.io import wavfile

    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(24000) / 16000)).astype(np.float32)
    wavfile.write(tmp_path / "float.wav", 16000, tone)  # IEEE float: not 16-bit PCM
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a 16-bit PCM WAV"):
        compiled_decoder()(tf.constant(str(tmp_path / "float.wav")))
    np.testing.assert_allclose(decode_audio(tmp_path / "float.wav"), tone, atol=1e-6)


def test_one_trace_for_every_length_and_rate(shared_dir, ravdess_speech):
    decoder = compiled_decoder()
    files = [ravdess_speech(PMX_WAV), ravdess_speech("03-01-05-01-01-01-01.wav")]
    files.append(shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3")  # 44.1 kHz
    lengths = {len(decode_audio(path)) for path in files}
    assert len(lengths) == 3 and decoder.experimental_get_tracing_count() == 1
    for samples in (1000, 3000, 16000):
        log_mel(np.zeros(samples, np.float32))
    from mater_tf.features.log_mel import _compiled_log_mel

    assert _compiled_log_mel().experimental_get_tracing_count() == 1


def test_the_tf_data_stage_decodes_wavs_in_the_graph_and_hands_failures_back(ravdess_speech, tmp_path):
    """WAV decoding and resampling never wait for tensorflow-io's lock: they run while it is held."""
    from mater_tf.media import tfio_audio

    wav = ravdess_speech(PMX_WAV)
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(300))
    paths = [str(wav), str(tmp_path / "missing.wav"), str(tmp_path / "junk.wav"), str(wav)]
    handed_back = []

    def fallback(path):
        handed_back.append(path)
        return np.zeros(0, np.float32), f"{path}: cannot be used", 0.0

    results = []
    with tfio_audio._TFIO_LOCK:
        worker = threading.Thread(target=lambda: results.extend(decoded_audio_dataset(paths, 2, fallback)))
        worker.start()
        worker.join(timeout=120)
    assert not worker.is_alive(), "the WAV path waited for tensorflow-io's lock"
    assert handed_back == paths[1:3], (handed_back, [error for _, error, _ in results])
    assert [error for _, error, _ in results] == [
        "",
        f"{paths[1]}: cannot be used",
        f"{paths[2]}: cannot be used",
        "",
    ]
    np.testing.assert_array_equal(results[0][0], decode_audio(wav))
    np.testing.assert_array_equal(results[3][0], results[0][0])
    mapped = next(iter(tf.data.Dataset.from_tensors(str(wav)).map(decode_audio_tensor))).numpy()
    np.testing.assert_array_equal(mapped, results[0][0])


def test_the_tf_data_stage_decodes_in_the_graph_under_op_determinism(ravdess_speech):
    """Training turns op determinism on for the rest of the process (mater_tf.training.trainer);
    the graph must not hold an op it refuses (tf.timestamp did, and every clip went to Python)."""
    tf.config.experimental.enable_op_determinism()
    path = str(ravdess_speech(PMX_WAV))
    handed_back = []

    def fallback(failed):
        handed_back.append(failed)
        return decode_audio(failed), "", 0.0

    results = list(decoded_audio_dataset([path, path], 2, fallback))
    assert handed_back == []
    np.testing.assert_array_equal(results[1][0], decode_audio(path))
    assert all(seconds >= 0 for _, _, seconds in results)


def test_a_rate_with_no_common_factor_is_refused_by_the_graph_and_read_by_ffmpeg(tmp_path):
    # 7999 Hz shares no factor with 16 kHz: its filter bank (16000 phases) took 5.4 GB for 1 s of
    # audio, and at 44101 Hz an allocation of 17 GB failed; now the op refuses it at once.
    with pytest.raises(tf.errors.InvalidArgumentError, match="filter bank too large"):
        resample(np.zeros(7999, np.float32), 7999, 16000)
    from scipy.io import wavfile

    tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * np.arange(7999) / 7999)).astype(np.int16)
    wavfile.write(tmp_path / "odd.wav", 7999, tone)
    waveform = decode_audio(tmp_path / "odd.wav")  # FFmpeg's resampler: 1 s at 16 kHz
    assert abs(len(waveform) - 16000) <= 16
    spectrum = np.abs(np.fft.rfft(waveform[2000:14000]))
    assert abs(np.argmax(spectrum) * 16000 / 12000 - 440) < 3


def test_a_suffix_mater_tf_does_not_know_is_read_as_predict_reads_it(shared_dir, tmp_path):
    # An mp3 named .mpga: not named as an audio file, so FFmpeg reads it, in the tf.data stage
    # (prepare) as in decode_audio (predict, the Beam runner): both runners give the same samples.
    import shutil

    unknown = tmp_path / "clip.mpga"
    shutil.copy(shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3", unknown)
    handed_back = []

    def fallback(path):
        handed_back.append(path)
        return np.zeros(0, np.float32), "refused", 0.0

    results = list(decoded_audio_dataset([str(unknown)], 1, fallback))
    assert handed_back == [] and results[0][1] == ""
    np.testing.assert_array_equal(results[0][0], decode_audio(unknown))
    assert len(results[0][0]) > 16000


def test_a_failure_in_the_graph_is_reported_by_its_reason_not_its_stack(tmp_path):
    from mater_tf.media import MediaError

    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF" + b"\x00" * 40 + b"not audio at all" * 20)
    with pytest.raises(MediaError) as refused:
        decode_audio(junk)
    message = str(refused.value)
    assert "not a 16-bit PCM WAV" in message and "Graph execution error" not in message
