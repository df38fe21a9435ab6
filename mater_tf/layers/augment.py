"""On-the-fly augmentation of log-mel patches for the learned audio front end (training only).

`LogMelAugment` takes a clip's window patches [batch, T, F, 64] of natural-log
mel energies and, in training mode only:

* gain: adds one random level change per clip, uniform in [-gain_db, +gain_db]
  dB (a gain g dB multiplies the energies by 10^(g/10), so it adds
  g ln(10) / 10 to every log-mel value of the clip; the contour across windows
  is kept);
* frequency warp: stretches the mel-band axis of a whole clip by one random
  factor a, uniform in [1 - freq_warp, 1 + freq_warp]: band b takes the value
  at position a * b, linearly interpolated between its two neighbours (the top
  band is repeated past the edge). A voice with a longer or shorter vocal tract
  (or a higher or lower pitch) has its harmonics and formants at other bands,
  so this is vocal tract length perturbation (Jaitly & Hinton 2013), applied on
  the mel scale instead of in Hz: it asks the front end for patterns that hold
  across speakers, which is what an unseen actor needs;
* SpecAugment (Park et al. 2019): in every window, `time_masks` runs of up to
  `time_mask_frames` consecutive frames and `freq_masks` runs of up to
  `freq_mask_bands` consecutive mel bands are replaced by that window's mean
  log-mel value.

At inference it is the identity. Its randomness comes from a Keras
SeedGenerator, so a run's augmentation is fixed by its seed and resumed
exactly (the generator's state is part of the run's backup).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from mater_tf.layers.package import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class LogMelAugment(keras.layers.Layer):
    """Random gain and frequency warp per clip, SpecAugment masks per window, in training mode only.

    Args:
        gain_db: largest level change, in dB (0 = none).
        freq_warp: largest relative stretch of the mel-band axis (0 = none; below 1).
        time_masks: time masks per window.
        time_mask_frames: longest time mask, in frames.
        freq_masks: frequency masks per window.
        freq_mask_bands: longest frequency mask, in mel bands.
        seed: seed of the layer's random stream.
    """

    def __init__(
        self,
        gain_db=0.0,
        time_masks=0,
        time_mask_frames=0,
        freq_masks=0,
        freq_mask_bands=0,
        seed=None,
        freq_warp=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= freq_warp < 1.0:
            raise ValueError(f"freq_warp must be in [0, 1), got {freq_warp!r}")
        self.gain_db = gain_db
        self.freq_warp = freq_warp
        self.time_masks = time_masks
        self.time_mask_frames = time_mask_frames
        self.freq_masks = freq_masks
        self.freq_mask_bands = freq_mask_bands
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _runs(self, shape, count, longest, axis_length):
        """[batch, T, axis_length] bool: `count` random runs of 0..longest positions."""
        positions = ops.cast(ops.arange(axis_length), "float32")[None, None, :]
        masked = ops.zeros(tuple(shape) + (axis_length,), "bool")
        for _ in range(count):
            width = ops.floor(keras.random.uniform(shape, 0.0, longest + 1.0, seed=self.seed_generator))
            start = ops.floor(
                keras.random.uniform(shape, 0.0, 1.0, seed=self.seed_generator) * (axis_length - width + 1.0)
            )
            run = (positions >= start[..., None]) & (positions < (start + width)[..., None])
            masked = masked | run
        return masked

    def _warp_bands(self, x):
        """Each clip's band axis read at a * b (one factor a per clip), linearly interpolated."""
        bands = x.shape[-1]
        factor = keras.random.uniform(
            (ops.shape(x)[0], 1, 1, 1), 1.0 - self.freq_warp, 1.0 + self.freq_warp, seed=self.seed_generator
        )
        position = ops.minimum(ops.cast(ops.arange(bands), x.dtype) * factor, bands - 1.0)
        below = ops.floor(position)
        above_weight = position - below
        below = ops.cast(below, "int32")
        above = ops.minimum(below + 1, bands - 1)
        shape = ops.shape(x)
        below = ops.broadcast_to(below, shape)
        above = ops.broadcast_to(above, shape)
        return (
            ops.take_along_axis(x, below, axis=-1) * (1.0 - above_weight)
            + ops.take_along_axis(x, above, axis=-1) * above_weight
        )

    def call(self, patches, training=None):
        if not training:
            return patches
        x = patches
        batch_windows = ops.shape(x)[:2]
        if self.gain_db:
            gain = keras.random.uniform(
                (batch_windows[0], 1, 1, 1), -self.gain_db, self.gain_db, seed=self.seed_generator
            )
            x = x + gain * (math.log(10.0) / 10.0)
        if self.freq_warp:
            x = self._warp_bands(x)
        if self.time_masks and self.time_mask_frames or self.freq_masks and self.freq_mask_bands:
            fill = ops.mean(x, axis=(2, 3), keepdims=True)
            frames, bands = x.shape[2], x.shape[3]
            masked = ops.zeros_like(x, dtype="bool")
            if self.time_masks and self.time_mask_frames:
                masked = (
                    masked
                    | self._runs(batch_windows, self.time_masks, self.time_mask_frames, frames)[..., None]
                )
            if self.freq_masks and self.freq_mask_bands:
                masked = (
                    masked
                    | self._runs(batch_windows, self.freq_masks, self.freq_mask_bands, bands)[:, :, None, :]
                )
            x = ops.where(masked, fill, x)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            gain_db=self.gain_db,
            time_masks=self.time_masks,
            time_mask_frames=self.time_mask_frames,
            freq_masks=self.freq_masks,
            freq_mask_bands=self.freq_mask_bands,
            seed=self.seed,
            freq_warp=self.freq_warp,
        )
        return config
