"""Plain audio files through TensorFlow ops (tensorflow-io): the one module that uses tfio.

Kept alone so that the day tensorflow-io is dropped (its last release only
loads in TensorFlow <= 2.17) this is a one-file change. WAV is decoded by
core TensorFlow (it copes with RAVDESS's non-standard FLLR chunk and with
stereo); mp3, flac and ogg by tfio's AudioIOTensor; resampling to 16 kHz by
`tfio.audio.resample`. Usable eagerly and inside `tf.data` maps.
"""

from __future__ import annotations

import threading

import numpy as np
import tensorflow as tf

from mater_tf.media import SAMPLE_RATE, MediaError


def _import_tfio():
    try:
        import tensorflow_io as tfio
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "decoding audio files needs tensorflow-io: pip install 'mater-tf[media]'"
        ) from error
    return tfio


def _decode_other(path: tf.Tensor):
    tfio = _import_tfio()
    audio = tfio.audio.AudioIOTensor(path.numpy().decode())
    samples = audio.to_tensor()
    if samples.dtype == tf.int16:
        samples = tf.cast(samples, tf.float32) / 32768.0
    return tf.cast(samples, tf.float32), tf.cast(audio.rate, tf.int32)


def decode_audio_tensor(path: tf.Tensor) -> tf.Tensor:
    """Graph-friendly: path -> float32 [samples] at 16 kHz, channels averaged."""
    tfio = _import_tfio()
    is_wav = tf.strings.regex_full_match(tf.strings.lower(path), r".*\.wav")

    def wav():
        samples, rate = tf.audio.decode_wav(tf.io.read_file(path))
        return samples, rate

    def other():
        samples, rate = tf.py_function(_decode_other, [path], [tf.float32, tf.int32])
        samples.set_shape([None, None])
        return samples, rate

    samples, rate = tf.cond(is_wav, wav, other)
    mono = tf.reduce_mean(samples, axis=1, keepdims=True)
    resampled = tf.cond(
        tf.equal(rate, SAMPLE_RATE),
        lambda: mono,
        lambda: tfio.audio.resample(mono, tf.cast(rate, tf.int64), SAMPLE_RATE),
    )
    return resampled[:, 0]


# tensorflow-io's decoders are not safe to run concurrently: two mp3 decodes at
# once in tf.data workers return wrong lengths and samples (measured on the
# CREMA-D sample). One lock keeps every tfio call serial; PyAV stays parallel.
_TFIO_LOCK = threading.Lock()


def decode_audio_file(path: str) -> np.ndarray:
    """Eager: one audio file -> float32 numpy [samples] at 16 kHz mono (thread-safe)."""
    try:
        with _TFIO_LOCK:
            return decode_audio_tensor(tf.constant(path)).numpy()
    except (tf.errors.OpError, RuntimeError, ValueError) as error:
        message = getattr(error, "message", str(error)).splitlines()[0]
        raise MediaError(f"{path}: audio cannot be decoded ({message}); the file may be corrupt") from None
