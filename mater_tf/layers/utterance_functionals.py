"""Utterance functionals: the whole clip's voice as one vector, from its windows' frames.

What the field's standard speech baseline (openSMILE ComParE functionals + a linear SVM)
reads: low-level descriptors frame by frame, summarised over the utterance by functionals
(moments, percentiles, ranges, the linear trend and where the extremes fall). Here the
descriptors come from the windows' own inputs: the log-mel patch (16 coarse bands, 14
MFCCs, loudness, the mel centroid, spread and entropy, the spectral flux) and the waveform
descriptors of `mater_tf.features.voice_descriptors` (energy, zero crossings, the full-band
spectral shape, periodicity and HNR), each with its delta; F0, HNR and loudness are also
summarised over the voiced frames only, with the voiced share. Only frames of present
windows that hold sound count (not the log-mel floor of the padding past a clip's end), so
padded windows and padding frames change nothing.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from mater_tf.layers.package import PACKAGE

NUM_BANDS = 64
COARSE_GROUP = 4  # adjacent mel bands per coarse band: 64 -> 16
NUM_MFCC = 14
LOG_MEL_DESCRIPTORS = NUM_BANDS // COARSE_GROUP + NUM_MFCC + 5
# The waveform descriptors read whole (mater_tf.features.voice_descriptors.DESCRIPTORS up to
# hnr_db), and the columns of log2_f0, hnr_db, log_rms and voiced (a test holds them equal).
WAVEFORM_TRACKS = 16
F0_COLUMN, HNR_COLUMN, LOG_RMS_COLUMN, VOICED_COLUMN = 16, 15, 0, 17
PERCENTILES = (0.01, 0.25, 0.5, 0.75, 0.99)
# Per track: mean, std, skewness, kurtosis, 5 percentiles, 2 ranges, slope, error, argmax, argmin.
NUM_FUNCTIONALS = 4 + len(PERCENTILES) + 2 + 2 + 2
VOICED_TRACKS = 3
# log(0.01): the log-mel of silence (= log of mater_tf.features.log_mel.LOG_OFFSET; a test holds
# them equal). Frames with every band at it are the padding past a clip's end (or digital silence).
LOG_MEL_FLOOR = -4.605170185988091
_LARGE = 3.0e38


def output_size() -> int:
    """The layer's output width: (log-mel + waveform tracks) x 2 (with deltas) and the voiced
    tracks x 2, each with NUM_FUNCTIONALS values, and the voiced share."""
    tracks = 2 * (LOG_MEL_DESCRIPTORS + WAVEFORM_TRACKS)
    return (tracks + 2 * VOICED_TRACKS) * NUM_FUNCTIONALS + 1


def dct_matrix(bands: int = NUM_BANDS, coefficients: int = NUM_MFCC) -> np.ndarray:
    """[bands, coefficients]: the orthonormal DCT-II (MFCCs from log-mel frames)."""
    n = np.arange(bands)[:, None]
    k = np.arange(coefficients)[None, :]
    matrix = np.sqrt(2.0 / bands) * np.cos(np.pi * k * (2 * n + 1) / (2 * bands))
    matrix[:, 0] /= np.sqrt(2.0)
    return matrix.astype(np.float32)


def _compact(values, mask):
    """Moves the frames where mask is 1 to the front, in order: [B, N, K] -> same, and counts."""
    length = ops.shape(values)[1]
    index = ops.arange(length)[None, :]
    order = ops.argsort(ops.where(mask > 0, index, index + length), axis=1)
    gathered = ops.take_along_axis(values, ops.broadcast_to(order[:, :, None], ops.shape(values)), axis=1)
    return gathered, ops.sum(ops.cast(mask > 0, "float32"), axis=1)


def _inside(values, count):
    """[B, N] 1.0 for the first `count` frames of each row."""
    index = ops.cast(ops.arange(ops.shape(values)[1]), "float32")[None, :]
    return ops.cast(index < count[:, None], "float32")


def _delta(values, count):
    """The frame-to-frame slope of compacted tracks (numpy.gradient: central inside, one-sided
    at the ends; zero for a single frame)."""
    following = ops.concatenate([values[:, 1:], values[:, -1:]], axis=1)
    preceding = ops.concatenate([values[:, :1], values[:, :-1]], axis=1)
    index = ops.cast(ops.arange(ops.shape(values)[1]), "float32")[None, :, None]
    last = (count - 1.0)[:, None, None]
    delta = ops.where(
        index == 0.0,
        following - values,
        ops.where(index == last, values - preceding, (following - preceding) / 2.0),
    )
    delta = ops.where(last <= 0.0, 0.0, delta)
    return ops.where(_inside(values, count)[:, :, None] > 0, delta, 0.0)


def _functionals(values, count):
    """[B, N, K] compacted tracks (the first `count` frames count) -> [B, K x NUM_FUNCTIONALS]."""
    inside = _inside(values, count)[:, :, None]
    frames = ops.maximum(count, 1.0)[:, None, None]
    values = ops.where(inside > 0, values, 0.0)
    mean = ops.sum(values, axis=1, keepdims=True) / frames
    centred = ops.where(inside > 0, values - mean, 0.0)
    variance = ops.sum(centred**2, axis=1, keepdims=True) / frames
    skewness = ops.sum(centred**3, axis=1, keepdims=True) / frames / (variance + 1e-12) ** 1.5
    kurtosis = ops.sum(centred**4, axis=1, keepdims=True) / frames / (variance + 1e-12) ** 2 - 3.0
    ordered = ops.sort(ops.where(inside > 0, values, _LARGE), axis=1)
    span = ops.maximum(count - 1.0, 0.0)[:, None, None]
    percentiles = []
    for fraction in PERCENTILES:
        position = fraction * span
        low = ops.floor(position)
        high = ops.minimum(low + 1.0, span)
        below = ops.take_along_axis(
            ordered, ops.broadcast_to(ops.cast(low, "int32"), ops.shape(mean)), axis=1
        )
        above = ops.take_along_axis(
            ordered, ops.broadcast_to(ops.cast(high, "int32"), ops.shape(mean)), axis=1
        )
        percentiles.append(below + (position - low) * (above - below))
    time = ops.cast(ops.arange(ops.shape(values)[1]), "float32")[None, :, None] / ops.maximum(span, 1.0)
    time_centred = ops.where(inside > 0, time - ops.sum(time * inside, axis=1, keepdims=True) / frames, 0.0)
    slope = ops.sum(time_centred * centred, axis=1, keepdims=True) / ops.maximum(
        ops.sum(time_centred**2, axis=1, keepdims=True), 1e-12
    )
    error = ops.sqrt(ops.sum((centred - slope * time_centred) ** 2 * inside, axis=1, keepdims=True) / frames)
    index = ops.cast(ops.arange(ops.shape(values)[1]), "float32")[None, :, None]

    def first_position(extreme, sign):
        target = ops.where(inside > 0, sign * values, -_LARGE)
        hit = (target >= ops.max(target, axis=1, keepdims=True)) & (inside > 0)
        first = ops.min(ops.where(hit, index, _LARGE), axis=1, keepdims=True)
        return ops.where(count[:, None, None] > 0, first, 0.0) / ops.maximum(span, 1.0)

    rows = [mean, ops.sqrt(variance + 1e-12), skewness, kurtosis, *percentiles]
    rows += [percentiles[-1] - percentiles[0], percentiles[3] - percentiles[1], slope, error]
    rows += [first_position("max", 1.0), first_position("min", -1.0)]
    stacked = ops.concatenate(rows, axis=1)  # [B, NUM_FUNCTIONALS, K]
    stacked = ops.where(count[:, None, None] > 0, stacked, 0.0)
    return ops.reshape(stacked, (-1, NUM_FUNCTIONALS * ops.shape(values)[2]))


def log_mel_descriptors(log_mel):
    """[B, N, 64] log-mel frames -> [B, N, LOG_MEL_DESCRIPTORS]: coarse bands, MFCCs, loudness,
    mel centroid, spread, entropy (the bands' energy shares) and spectral flux (the RMS change
    from the frame before; 0 for the first)."""
    power = ops.exp(log_mel)
    groups = ops.reshape(power, (-1, ops.shape(power)[1], NUM_BANDS // COARSE_GROUP, COARSE_GROUP))
    coarse = ops.log(ops.sum(groups, axis=-1))
    mfcc = ops.matmul(log_mel, ops.convert_to_tensor(dct_matrix(), log_mel.dtype))
    total = ops.sum(power, axis=-1, keepdims=True)
    share = power / total
    band = ops.cast(ops.arange(NUM_BANDS), log_mel.dtype)
    centroid = ops.sum(share * band, axis=-1, keepdims=True)
    spread = ops.sqrt(ops.sum(share * (band - centroid) ** 2, axis=-1, keepdims=True))
    entropy = -ops.sum(share * ops.log(share + 1e-12), axis=-1, keepdims=True)
    preceding = ops.concatenate([log_mel[:, :1], log_mel[:, :-1]], axis=1)
    flux = ops.sqrt(ops.mean((log_mel - preceding) ** 2, axis=-1, keepdims=True))
    return ops.concatenate([coarse, mfcc, ops.log(total), centroid, spread, entropy, flux], axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class UtteranceFunctionals(keras.layers.Layer):
    """Log-mel patches [B, T, F, 64], voice descriptors [B, T, F, D] and window presence
    [B, T] -> the clip's functionals [B, output_size()] (no weights)."""

    def call(self, log_mel, descriptors, valid):
        frames = log_mel.shape[2]
        windows = ops.shape(log_mel)[1]
        log_mel = ops.reshape(log_mel, (-1, windows * frames, NUM_BANDS))
        # A present window's frames past the clip's end hold the floor: they are not the voice.
        sounding = ops.cast(ops.max(log_mel, axis=-1) > LOG_MEL_FLOOR + 1e-4, "float32")
        present = ops.repeat(ops.cast(valid, "float32"), frames, axis=1) * sounding  # [B, T x F]
        descriptors = ops.reshape(descriptors, (-1, windows * frames, descriptors.shape[-1]))
        joined, count = _compact(ops.concatenate([log_mel, descriptors], axis=-1), present)
        log_mel, descriptors = joined[..., :NUM_BANDS], joined[..., NUM_BANDS:]
        inside = _inside(joined, count)[:, :, None]
        log_mel = ops.where(inside > 0, log_mel, 0.0)
        tracks = ops.concatenate([log_mel_descriptors(log_mel), descriptors[..., :WAVEFORM_TRACKS]], axis=-1)
        tracks = ops.concatenate([tracks, _delta(tracks, count)], axis=-1)
        voiced_mask = ops.where(inside[..., 0] > 0, descriptors[..., VOICED_COLUMN], 0.0)
        voiced, voiced_count = _compact(
            ops.stack(
                [descriptors[..., F0_COLUMN], descriptors[..., HNR_COLUMN], descriptors[..., LOG_RMS_COLUMN]],
                axis=-1,
            ),
            voiced_mask,
        )
        voiced = ops.concatenate([voiced, _delta(voiced, voiced_count)], axis=-1)
        share = (voiced_count / ops.maximum(count, 1.0))[:, None]
        return ops.concatenate(
            [_functionals(tracks, count), _functionals(voiced, voiced_count), share], axis=-1
        )

    def compute_output_shape(self, log_mel_shape, descriptors_shape=None, valid_shape=None):
        return (log_mel_shape[0], output_size())
