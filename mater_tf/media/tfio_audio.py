"""mp3, flac and ogg through tensorflow-io: the one module that uses tfio.

Kept alone so that the day tensorflow-io is dropped (its last release only
loads in TensorFlow <= 2.17) this is a one-file change. WAV is read by core
TensorFlow and every file is resampled by `mater_tf.media.resample`, both in
graph ops (`mater_tf.media.audio_graph`); only tfio's decoders run here, in a
`tf.py_function`, one at a time.
"""

from __future__ import annotations

import threading

import tensorflow as tf

# tensorflow-io's decoders are not safe to run concurrently: two mp3 decodes at
# once in tf.data workers return wrong lengths and samples (measured on the
# CREMA-D sample; tests/test_media.py holds it). This lock keeps every tfio
# decode serial; WAV, resampling and PyAV run in parallel.
_TFIO_LOCK = threading.Lock()


def _import_tfio():
    try:
        import tensorflow_io as tfio
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "decoding audio files needs tensorflow-io: pip install 'mater-tf[media]'"
        ) from error
    return tfio


def decode_other(path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Eager (a `tf.py_function` body): mp3/flac/ogg -> (float32 [samples, channels], rate)."""
    tfio = _import_tfio()
    with _TFIO_LOCK:
        audio = tfio.audio.AudioIOTensor(path.numpy().decode())
        samples = audio.to_tensor()
        rate = audio.rate
    if samples.dtype == tf.int16:
        samples = tf.cast(samples, tf.float32) / 32768.0
    return tf.cast(samples, tf.float32), tf.cast(rate, tf.int32)
