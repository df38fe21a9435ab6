"""A front end run on every window of a clip: log-mel patches [batch, T, F, 64] -> [batch, T, C]."""

from __future__ import annotations

import keras
from keras import ops

from mater_tf.layers.band_statistics import DEFAULT_BAND_STATISTICS
from mater_tf.layers.package import PACKAGE
from mater_tf.layers.patch_frontend import NUM_BANDS, SMALL_FILTERS, build_frontend


def clip_standardize(patches, valid=None, epsilon=1e-3):
    """Each mel band of each clip to zero mean, unit variance over the frames of its present
    windows: patches [batch, T, F, 64], valid [batch, T] (1 = present; None = all).

    Absent windows are not counted (their values are standardised with the present ones'
    statistics; the caller masks their outputs). A clip with no present window passes unchanged.
    """
    weights = ops.ones(ops.shape(patches)[:2]) if valid is None else ops.cast(valid, patches.dtype)
    weights = weights[:, :, None, None]
    count = ops.sum(weights, axis=(1, 2), keepdims=True) * ops.shape(patches)[2]
    has_frames = count > 0
    frames = ops.maximum(count, 1.0)
    mean = ops.sum(patches * weights, axis=(1, 2), keepdims=True) / frames
    variance = ops.sum(ops.square(patches - mean) * weights, axis=(1, 2), keepdims=True) / frames
    mean = ops.where(has_frames, mean, 0.0)
    scale = ops.where(has_frames, ops.rsqrt(variance + epsilon), 1.0)
    return (patches - mean) * scale


@keras.saving.register_keras_serializable(package=PACKAGE)
class WindowFrontend(keras.layers.Layer):
    """Runs a front end (conv or statistics) on every window's patch: [batch, T, F, 64] -> [batch, T, C].

    All windows of the batch go through the front end as one flat batch; `valid`
    [batch, T] (1 = window present; None = all present) keeps the absent ones out
    of the batch norms' statistics. Their outputs are computed all the same: the
    caller masks them.

    Args:
        kind: "vggish", "small" or "stats" (see `build_frontend`).
        frames: log-mel frames per window (F).
        normalization: one of `NORMALIZATIONS`.
        filters: the `small` stack's channels per conv block.
        pooling: one of `POOLINGS`.
        statistics: the band statistics of the `stats` kind and the `band_stats`
            pooling (names from `BAND_STATISTICS`).
    """

    def __init__(
        self,
        kind,
        frames,
        normalization="band",
        filters=SMALL_FILTERS,
        pooling="time_and_frequency",
        statistics=DEFAULT_BAND_STATISTICS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kind = kind
        self.frames = frames
        self.normalization = normalization
        self.filters = tuple(filters)
        self.pooling = pooling
        self.statistics = tuple(statistics)
        self.frontend = build_frontend(
            kind,
            frames,
            name=f"{kind}_frontend",
            normalization=normalization,
            filters=self.filters,
            pooling=pooling,
            statistics=self.statistics,
        )

    def build(self, patches_shape, valid_shape=None):
        # The functional front end was built when it was made.
        self.built = True

    def call(self, patches, valid=None, training=None):
        shape = ops.shape(patches)
        if self.normalization == "clip":
            patches = clip_standardize(patches, valid)
        flat = ops.reshape(patches, (-1, self.frames, NUM_BANDS))
        if len(self.frontend.inputs) == 1:  # no batch norm: nothing depends on the other windows
            embedded = self.frontend(flat, training=training)
        else:
            present = ops.ones(shape[:2]) if valid is None else ops.cast(valid, "float32")
            embedded = self.frontend([flat, ops.reshape(present, (-1,))], training=training)
        return ops.reshape(embedded, (shape[0], shape[1], embedded.shape[-1]))

    def compute_output_shape(self, patches_shape, valid_shape=None):
        return (patches_shape[0], patches_shape[1], self.frontend.output_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            kind=self.kind,
            frames=self.frames,
            normalization=self.normalization,
            filters=list(self.filters),
            pooling=self.pooling,
            statistics=list(self.statistics),
        )
        return config

    def adapt(self, patches) -> None:
        """Sets a "band" normalisation from real patches [n, frames, 64] (a tensor or a
        tf.data dataset of batches of them); nothing to do for the others."""
        if self.normalization == "band":
            self.frontend.get_layer("band_normalization").adapt(patches)
