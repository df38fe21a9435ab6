"""The VGGish log-mel front end in TensorFlow ops.

Same numbers as the reference (tensorflow/models research/audioset/vggish,
mel_features.py) fed the same 16 kHz waveform: 25 ms periodic-Hann frames
(400 samples) every 10 ms (160), |rfft| of 512 points (magnitude, not power),
64 HTK mel bands from 125 to 7500 Hz with the DC bin zeroed, log(mel + 0.01).
Frames are cut without padding, so N samples give 1 + (N - 400) // 160 frames.
"""

from __future__ import annotations

import functools

import tensorflow as tf

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 400
HOP_SAMPLES = 160
FFT_LENGTH = 512
NUM_MEL_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_SAMPLES


def mel_matrix() -> tf.Tensor:
    """[257, 64] HTK mel weights; row 0 (DC) is zero, as in the reference."""
    return tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=NUM_MEL_BANDS,
        num_spectrogram_bins=FFT_LENGTH // 2 + 1,
        sample_rate=SAMPLE_RATE,
        lower_edge_hertz=MEL_MIN_HZ,
        upper_edge_hertz=MEL_MAX_HZ,
    )


def log_mel(waveform, sample_rate: int = SAMPLE_RATE) -> tf.Tensor:
    """Log-mel spectrogram [frames, 64] of a mono 16 kHz waveform.

    Runs as one compiled graph (traced once for any length): called eagerly per
    clip, the ops one by one cost about 13x as much as the graph.

    Args:
        waveform: float samples in [-1, 1], a numpy array or a tensor [samples].
        sample_rate: must be 16000 (resample first; see mater_tf.media).

    Returns:
        float32 tensor [frames, 64]; zero frames when the waveform is shorter
        than one 25 ms window.
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"log_mel needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz: resample it first")
    return _compiled_log_mel()(tf.convert_to_tensor(waveform, tf.float32))


@functools.lru_cache(maxsize=1)
def _compiled_log_mel():
    return tf.function(_log_mel_ops, input_signature=[tf.TensorSpec([None], tf.float32)])


def _log_mel_ops(waveform: tf.Tensor) -> tf.Tensor:
    length = tf.shape(waveform)[0]
    num_frames = tf.maximum(0, 1 + (length - WINDOW_SAMPLES) // HOP_SAMPLES)
    # A waveform shorter than one window gives no frame; it is padded to one
    # window only because the RFFT kernel rejects an empty batch.
    padded = tf.pad(waveform, [[0, tf.maximum(0, WINDOW_SAMPLES - length)]])
    spectrogram = tf.abs(
        tf.signal.stft(
            padded,
            frame_length=WINDOW_SAMPLES,
            frame_step=HOP_SAMPLES,
            fft_length=FFT_LENGTH,
            window_fn=tf.signal.hann_window,  # periodic by default
            pad_end=False,
        )
    )[:num_frames]
    return tf.math.log(tf.matmul(spectrogram, mel_matrix()) + LOG_OFFSET)
