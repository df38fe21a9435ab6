"""Per mel band statistics of a log-mel patch over its frames: the `stats` front end, and the
`band_stats` pooling of a conv one."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from mater_tf.layers.package import PACKAGE

# What `BandStatistics` computes per mel band over a patch's frames, in the order given:
# "mean" (the spectral envelope), "std" (its spread), "change" (the mean absolute difference
# between consecutive frames: how fast the band moves), "change_std" (the standard deviation
# of those differences: how unevenly it moves, rising and falling in bursts or steadily) and
# "modulation" (the rhythm of the voice: for each group of MODULATION_GROUP adjacent bands, the
# group's loudness contour over the window, its own mean removed, as a magnitude spectrum whose
# mean in each range of MODULATION_RANGES_HZ is logged: 16 groups x 4 ranges = 64 values, group
# after group; syllable rate, tremor and roughness move these).
BAND_STATISTICS = ("mean", "std", "change", "change_std", "modulation")
DEFAULT_BAND_STATISTICS = ("mean", "std", "change")
MODULATION_GROUP = 4
MODULATION_RANGES_HZ = ((1.5, 5.0), (5.0, 9.0), (9.0, 18.0), (18.0, 50.0))
# The log-mel's frame rate (= mater_tf.features.log_mel.FRAMES_PER_SECOND; a test holds them equal).
FRAMES_PER_SECOND = 100


def modulation_weights(frames: int) -> np.ndarray:
    """[frames // 2 + 1, len(MODULATION_RANGES_HZ)]: the weights that average a contour's
    magnitude spectrum (rfft over `frames` log-mel frames) over each modulation range,
    [low, high) in Hz; a range with no bin at this window length gets a zero column."""
    rates = np.arange(frames // 2 + 1) * FRAMES_PER_SECOND / frames
    weights = np.zeros((len(rates), len(MODULATION_RANGES_HZ)), np.float32)
    for column, (low, high) in enumerate(MODULATION_RANGES_HZ):
        inside = (rates >= low) & (rates < high)
        weights[inside, column] = 1.0 / max(1, inside.sum())
    return weights


@keras.saving.register_keras_serializable(package=PACKAGE)
class BandStatistics(keras.layers.Layer):
    """Per mel band statistics over time of patches [batch, frames, bands] ->
    [batch, len(statistics) x bands], the statistics (names from `BAND_STATISTICS`) one
    after the other in the order given. The frame-to-frame ones are 0 for a window of
    one frame."""

    def __init__(self, statistics=DEFAULT_BAND_STATISTICS, **kwargs):
        super().__init__(**kwargs)
        statistics = tuple(statistics)
        unknown = [name for name in statistics if name not in BAND_STATISTICS]
        if not statistics or unknown or len(set(statistics)) != len(statistics):
            raise ValueError(
                f"band statistics must be distinct names from {BAND_STATISTICS}, got {list(statistics)}"
            )
        self.statistics = statistics

    def call(self, inputs):
        if inputs.shape[1] is not None and inputs.shape[1] < 2:
            change = ops.zeros_like(inputs[:, :1])
        else:
            change = inputs[:, 1:] - inputs[:, :-1]
        compute = {
            "mean": lambda: ops.mean(inputs, axis=1),
            "std": lambda: ops.std(inputs, axis=1),
            "change": lambda: ops.mean(ops.abs(change), axis=1),
            "change_std": lambda: ops.std(change, axis=1),
            "modulation": lambda: self._modulation(inputs),
        }
        return ops.concatenate([compute[name]() for name in self.statistics], axis=-1)

    @staticmethod
    def _modulation(inputs):
        frames, bands = inputs.shape[1], inputs.shape[2]
        groups = bands // MODULATION_GROUP
        contour = ops.mean(ops.reshape(inputs, (-1, frames, groups, MODULATION_GROUP)), axis=-1)
        contour = ops.transpose(contour - ops.mean(contour, axis=1, keepdims=True), (0, 2, 1))
        real, imag = ops.rfft(contour)  # [batch, groups, frames // 2 + 1]
        magnitude = ops.sqrt(ops.square(real) + ops.square(imag) + 1e-12)
        pooled = ops.matmul(magnitude, ops.convert_to_tensor(modulation_weights(frames), magnitude.dtype))
        return ops.reshape(ops.log(pooled + 1e-3), (-1, groups * len(MODULATION_RANGES_HZ)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.statistics) * input_shape[2])

    def get_config(self):
        return {**super().get_config(), "statistics": list(self.statistics)}
