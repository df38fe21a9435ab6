"""16 kHz mono audio of any clip (`decode_audio`): TensorFlow ops for files named as audio
files, PyAV for everything else and for what TensorFlow's readers reject."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mater_tf.media.errors import MediaError, op_error_reason
from mater_tf.media.formats import named_audio_file
from mater_tf.media.media_file import check_readable, decode_audio_track


def decode_audio(path: str | Path) -> np.ndarray:
    """16 kHz mono audio of any clip: TensorFlow ops for audio files, PyAV for everything else.

    Files named as audio files (`AUDIO_SUFFIXES`) go through `mater_tf.media.audio_graph` (WAV by TensorFlow, mp3/flac/ogg by
    tensorflow-io, resampled by `mater_tf.media.resample`), the same graph that
    `mater-tf prepare` maps over its clips. A file that graph cannot read (a WAV that is not
    16-bit PCM, or a .wav that holds mp3) falls back to PyAV (the same file always takes the
    same path). Any other file (.m4a, .mp4, .opus, no suffix) is read by PyAV.
    """
    path = check_readable(path)
    if not named_audio_file(path):
        return decode_audio_track(path)
    import tensorflow as tf

    # Imported here: the graph module imports TensorFlow, which `mater_tf.media` alone does not.
    from mater_tf.media.audio_graph import compiled_decoder

    try:
        return compiled_decoder()(tf.constant(str(path))).numpy()
    except (tf.errors.OpError, RuntimeError, ValueError) as error:
        # tensorflow-io names the file again ("unknown file type: /path/clip.mp3"); the line names it first.
        message = op_error_reason(getattr(error, "message", str(error))).replace(f": {path}", "")
        try:
            waveform = decode_audio_track(path)
        except MediaError:
            raise MediaError(
                f"{path}: audio cannot be decoded ({message}); the file may be corrupt"
            ) from None
        logging.getLogger(__name__).debug("%s: read by FFmpeg (TensorFlow's reader rejected it)", path)
        return waveform
