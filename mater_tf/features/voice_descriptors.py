"""Per-frame voice descriptors of a window's waveform, in TensorFlow ops (tf.signal).

What the log-mel patch does not hold, frame by frame on the log-mel's own frames (25 ms
every 10 ms, so a window's descriptors line up with its log-mel patch): the loudness and
zero-crossing rate of the waveform, the shape of the full-band (0-8 kHz) power spectrum
(centroid, spread, skewness, kurtosis, entropy, roll-off points, slope, the energy of
250-650 Hz and 1-4 kHz), and the voice's periodicity from the autocorrelation of a 40 ms
frame: its strength, the harmonics-to-noise ratio, F0 and whether the frame is voiced.
These are the low-level descriptors of the field's standard feature sets (openSMILE's
ComParE and eGeMAPS) that a linear model on utterance functionals reads; the model turns
them into functionals over the clip (`mater_tf.layers.utterance_functionals`).
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from mater_tf.features.log_mel import FFT_LENGTH, HOP_SAMPLES, SAMPLE_RATE, WINDOW_SAMPLES

PITCH_SAMPLES = 640  # 40 ms: two periods of a 50 Hz voice
PITCH_FFT = 2048  # >= 2 x PITCH_SAMPLES, so the autocorrelation does not wrap
F0_RANGE_HZ = (60.0, 500.0)
VOICED_THRESHOLD = 0.45  # normalised autocorrelation at the best lag
ROLLOFFS = (0.25, 0.5, 0.75, 0.9)
# The columns, in order. `voice_descriptors` gives [frames, len(DESCRIPTORS)].
DESCRIPTORS = (
    "log_rms",
    "zero_crossing_rate",
    "spectral_centroid",
    "spectral_spread",
    "spectral_skewness",
    "spectral_kurtosis",
    "spectral_entropy",
    *(f"rolloff_{int(fraction * 100)}" for fraction in ROLLOFFS),
    "spectral_slope",
    "log_energy_250_650",
    "log_energy_1000_4000",
    "periodicity",
    "hnr_db",
    "log2_f0",
    "voiced",
)
NUM_DESCRIPTORS = len(DESCRIPTORS)


def voice_descriptors(samples, frames: int) -> tf.Tensor:
    """Descriptors [frames, NUM_DESCRIPTORS] of one window's 16 kHz samples.

    Frame t starts at sample 160 t, as the log-mel's; the samples are zero-padded to
    what the last frame's 40 ms pitch frame needs (a window at the clip's end).
    """
    return _compiled()(tf.convert_to_tensor(samples, tf.float32), tf.constant(frames, tf.int32))


@functools.lru_cache(maxsize=1)
def _compiled():
    return tf.function(
        _descriptor_ops,
        input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)],
    )


def _frames(signal, length, count):
    starts = tf.range(count) * HOP_SAMPLES
    return tf.gather(signal, starts[:, None] + tf.range(length)[None, :])


def _descriptor_ops(samples, frames):
    need = (frames - 1) * HOP_SAMPLES + PITCH_SAMPLES
    samples = samples[:need]
    signal = tf.pad(samples, [[0, need - tf.shape(samples)[0]]])
    framed = _frames(signal, WINDOW_SAMPLES, frames)
    window = tf.signal.hann_window(WINDOW_SAMPLES)  # periodic, as the log-mel's
    power = tf.square(tf.abs(tf.signal.rfft(framed * window, [FFT_LENGTH]))) + 1e-10
    freqs = tf.constant(np.fft.rfftfreq(FFT_LENGTH, 1.0 / SAMPLE_RATE), tf.float32)
    share = power / tf.reduce_sum(power, axis=1, keepdims=True)
    centroid = tf.reduce_sum(share * freqs, axis=1)
    deviation = freqs[None, :] - centroid[:, None]
    spread = tf.sqrt(tf.reduce_sum(share * deviation**2, axis=1)) + 1e-6
    skewness = tf.reduce_sum(share * deviation**3, axis=1) / spread**3
    kurtosis = tf.reduce_sum(share * deviation**4, axis=1) / spread**4
    bins = FFT_LENGTH // 2 + 1
    entropy = -tf.reduce_sum(share * tf.math.log(share), axis=1) / np.log(bins)
    cumulative = tf.cumsum(share, axis=1)
    rolloffs = [
        tf.gather(freqs, tf.minimum(tf.reduce_sum(tf.cast(cumulative < q, tf.int32), axis=1), bins - 1))
        for q in ROLLOFFS
    ]
    log_power = tf.math.log(power)
    centred_freqs = freqs - tf.reduce_mean(freqs)
    slope = tf.reduce_sum(
        (log_power - tf.reduce_mean(log_power, axis=1, keepdims=True)) * centred_freqs, axis=1
    ) / tf.reduce_sum(centred_freqs**2)

    def band_energy(low, high):
        inside = tf.cast((freqs >= low) & (freqs <= high), tf.float32)
        return tf.math.log(tf.reduce_sum(power * inside, axis=1))

    log_rms = tf.math.log(tf.sqrt(tf.reduce_mean(tf.square(framed), axis=1)) + 1e-5)
    positive = framed >= 0
    crossings = tf.cast(tf.not_equal(positive[:, 1:], positive[:, :-1]), tf.float32)
    zero_crossing_rate = tf.reduce_mean(crossings, axis=1)

    pitch_frames = _frames(signal, PITCH_SAMPLES, frames)
    pitch_frames -= tf.reduce_mean(pitch_frames, axis=1, keepdims=True)
    spectrum = tf.signal.rfft(pitch_frames * tf.signal.hann_window(PITCH_SAMPLES), [PITCH_FFT])
    autocorrelation = tf.signal.irfft(tf.cast(tf.square(tf.abs(spectrum)), tf.complex64), [PITCH_FFT])
    autocorrelation = autocorrelation[:, :PITCH_SAMPLES] / (autocorrelation[:, :1] + 1e-10)
    shortest, longest = int(SAMPLE_RATE // F0_RANGE_HZ[1]), int(SAMPLE_RATE // F0_RANGE_HZ[0])
    lag = shortest + tf.argmax(autocorrelation[:, shortest:longest], axis=1, output_type=tf.int32)
    strength = tf.clip_by_value(tf.gather(autocorrelation, lag, batch_dims=1), 1e-3, 0.999)
    hnr_db = 10.0 * tf.math.log(strength / (1.0 - strength)) / np.log(10.0)
    log2_f0 = tf.math.log(SAMPLE_RATE / tf.cast(lag, tf.float32)) / np.log(2.0)
    voiced = tf.cast(strength > VOICED_THRESHOLD, tf.float32)
    columns = [log_rms, zero_crossing_rate, centroid, spread, skewness, kurtosis, entropy, *rolloffs]
    columns += [slope, band_energy(250.0, 650.0), band_energy(1000.0, 4000.0)]
    columns += [strength, hnr_db, log2_f0, voiced]
    return tf.stack(columns, axis=1)
