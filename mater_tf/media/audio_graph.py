"""Audio files to 16 kHz mono in TensorFlow ops: one decoder for every WAV, one resampler for every file.

`decode_audio_tensor(path)` is a graph function (eager, `tf.function` and
`Dataset.map` alike):

* WAV: the file's chunks are walked in graph ops to the end of its `data`
  chunk and TensorFlow's own `tf.audio.decode_wav` reads the file up to there.
  TensorFlow's reader alone rejects files whose chunks after the data end in an
  odd-sized chunk and its pad byte (10 of the 17 RAVDESS sample wavs end in such
  a `_PMX` chunk: "Data too short"); the samples are in front of it. A WAV that
  is not 16-bit PCM, or whose chunks do not add up, fails with an op error and
  is read by FFmpeg instead (`mater_tf.media.audio_decoding.decode_audio`).
* .mp3, .flac, .ogg: tensorflow-io (`mater_tf.media.tfio_audio`), the one step
  still in a `tf.py_function`, behind tensorflow-io's lock.
* Any other file (.mp4, .flv, .m4a, .opus, no suffix ...), for `decoded_audio_dataset` only:
  PyAV in a `tf.py_function` (`decode_audio_track`, already 16 kHz), no lock. The suffix
  only picks the reader; a file it does not fit (a .wav holding mp3) fails in the graph and
  is read by FFmpeg, as `mater_tf.media.audio_decoding.decode_audio` reads it.

Then channels are averaged and the waveform is resampled to 16 kHz with
`mater_tf.media.resample` (resampy's filter, the VGGish reference's resampler,
as one polyphase conv; no recompilation for new lengths or rates).
"""

from __future__ import annotations

import functools
import logging
import time

import numpy as np
import tensorflow as tf

from mater_tf.media import tfio_audio
from mater_tf.media.errors import op_error_reason
from mater_tf.media.formats import AUDIO_SUFFIXES, SAMPLE_RATE
from mater_tf.media.media_file import decode_audio_track
from mater_tf.media.resample import resample

_WAV_PCM = 1
_PAD = "\0" * 32  # reads past the end of a short file see zeros, never an out-of-range error


def _number(padded, position, dtype):
    size = 2 if dtype == tf.uint16 else 4
    value = tf.io.decode_raw(tf.strings.substr(padded, position, size), dtype, little_endian=True)[0]
    return tf.cast(value, tf.int32)


def wav_data_end(contents: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(readable, end): whether `contents` is a RIFF/WAVE file of 16-bit PCM with a whole data
    chunk, and the byte just past that data chunk."""
    length = tf.strings.length(contents)
    padded = contents + _PAD
    riff = tf.logical_and(
        tf.equal(tf.strings.substr(padded, 0, 4), "RIFF"), tf.equal(tf.strings.substr(padded, 8, 4), "WAVE")
    )
    no_data = tf.constant(-1, tf.int32)

    def keep_walking(offset, data_end, pcm16):
        return tf.logical_and(offset + 8 <= length, data_end < 0)

    def next_chunk(offset, data_end, pcm16):
        kind = tf.strings.substr(padded, offset, 4)
        size = _number(padded, offset + 4, tf.int32)
        size = tf.where(size < 0, length, size)  # beyond 2 GB: stop walking (FFmpeg reads it)
        is_format = tf.equal(kind, "fmt ")
        format_pcm16 = tf.logical_and(
            tf.equal(_number(padded, offset + 8, tf.uint16), _WAV_PCM),
            tf.equal(_number(padded, offset + 22, tf.uint16), 16),
        )
        pcm16 = tf.where(is_format, tf.logical_and(format_pcm16, size >= 16), pcm16)
        data_end = tf.where(tf.equal(kind, "data"), offset + 8 + size, data_end)
        return offset + 8 + size + size % 2, data_end, pcm16

    start = (tf.constant(12, tf.int32), no_data, tf.constant(False))
    _, data_end, pcm16 = tf.while_loop(keep_walking, next_chunk, start)
    readable = tf.logical_and(tf.logical_and(riff, pcm16), tf.logical_and(data_end > 0, data_end <= length))
    return readable, data_end


def read_wav(path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(float32 [samples, channels], rate) of a 16-bit PCM WAV, in graph ops (op error otherwise)."""
    contents = tf.io.read_file(path)
    readable, data_end = wav_data_end(contents)
    check = tf.debugging.Assert(readable, ["not a 16-bit PCM WAV that TensorFlow reads:", path])
    with tf.control_dependencies([check]):
        samples, rate = tf.audio.decode_wav(tf.strings.substr(contents, 0, tf.maximum(data_end, 0)))
    return samples, rate


def _decode_container(path):
    return decode_audio_track(path.numpy().decode())[:, None], np.int32(SAMPLE_RATE)


def _py_decoder(function, path):
    samples, rate = tf.py_function(function, [path], [tf.float32, tf.int32])
    samples.set_shape([None, None])
    rate.set_shape([])
    return samples, rate


def _is(path, suffixes) -> tf.Tensor:
    pattern = r".*\.(" + "|".join(suffix.lstrip(".") for suffix in suffixes) + ")"
    return tf.strings.regex_full_match(tf.strings.lower(path), pattern)


def decode_audio_tensor(path: tf.Tensor) -> tf.Tensor:
    """Graph function: an audio file's path -> float32 [samples] at 16 kHz, channels averaged.

    Files not named as audio files are read by PyAV; the rest as the module doc says.
    """
    path = tf.convert_to_tensor(path, tf.string)
    samples, rate = tf.case(
        [
            (_is(path, (".wav",)), lambda: read_wav(path)),
            (
                _is(path, [suffix for suffix in AUDIO_SUFFIXES if suffix != ".wav"]),
                lambda: _py_decoder(tfio_audio.decode_other, path),
            ),
        ],
        default=lambda: _py_decoder(_decode_container, path),
    )
    mono = tf.reduce_mean(samples, axis=1)
    return resample(mono, rate, SAMPLE_RATE)


@functools.lru_cache(maxsize=1)
def compiled_decoder():
    """`decode_audio_tensor` traced once (any path, length and rate)."""
    return tf.function(decode_audio_tensor, input_signature=[tf.TensorSpec([], tf.string)])


def decoded_audio_dataset(paths: list[str], workers: int, fallback, read_ahead: int = 2):
    """Yields (waveform float32 numpy [samples], error text, decode seconds) per path, in order.

    The decoding runs in a `Dataset.map` graph, `workers` clips at a time, ahead of
    the consumer (up to `read_ahead` clips); "decode seconds" is how long the consumer waited for the clip. A clip
    whose graph decoding fails (a WAV TensorFlow cannot read, a corrupt file) is
    handed to `fallback(path) -> (waveform, error, seconds)` in Python, which
    reads it with FFmpeg or says why it cannot be used.
    """
    # Every file goes through the graph, read by the decoder `decode_audio` picks for it (predict
    # and the Beam runner), so the runners agree; one FFmpeg cannot read fails to `fallback`.
    dataset = tf.data.Dataset.from_tensor_slices(paths or [""]).take(len(paths))

    # No clock in the graph: tf.timestamp fails while TensorFlow's op determinism is on (training
    # turns it on for the rest of the process), which would send every clip to `fallback`.
    decoded = dataset.map(decode_audio_tensor, num_parallel_calls=max(1, workers), deterministic=True)
    # Every buffer and parallelism here is set, so autotuning has nothing to tune; left on, its
    # background loop held the iterator's end (or teardown) for up to 5-10 s in half of the
    # prepare runs on the CREMA-D sample.
    options = tf.data.Options()
    options.autotune.enabled = False
    iterator = iter(decoded.prefetch(read_ahead).with_options(options))
    for path in paths:
        started = time.perf_counter()
        try:
            waveform = next(iterator)
        except tf.errors.OpError as graph_error:  # this clip only: the iterator goes on with the next
            message = op_error_reason(graph_error.message)
            logging.getLogger(__name__).debug("%s: decoded in Python (%s)", path, message)
            waveform, error, seconds = fallback(path)
            yield waveform, error, seconds + time.perf_counter() - started
            continue
        seconds = time.perf_counter() - started
        yield waveform.numpy(), "", float(seconds)
