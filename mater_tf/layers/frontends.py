"""Front ends on log-mel patches [batch, frames, 64] (pure Keras): convolutional, or statistics.

`vggish_conv_stack` is VGGish's conv part (its layers carry the checkpoint's
names, so `mater_tf.features.vggish.load_vggish_weights` fills it);
the `small` stack (conv 3x3 + batch norm + ReLU + max-pool blocks, 16/32/64
channels by default) is a light variant for training on a CPU. Both end in a
pooling of the last feature map (see `POOLINGS`), giving one vector per patch.
The `stats` front end has no convolution: each normalised patch becomes its
per-band statistics over time (`BandStatistics`: by default the mean, standard
deviation and mean frame-to-frame change; `BAND_STATISTICS` lists them all).

Padded (absent) windows are patches too; in training mode the `small` stack's
batch norms take their batch statistics from the present windows only, so an
absent window's content changes no output and no moving statistic.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from mater_tf.layers.package import PACKAGE

NUM_BANDS = 64
FRONTENDS = ("vggish", "small", "stats")
# How a patch is normalised before the convolutions: "band" = per mel band with the
# training split's mean and variance (keras Normalization, set by `WindowFrontend.adapt`),
# so the level of the voice, an emotion cue, stays in; "patch" = zero mean, unit
# variance over each patch (loudness drops out); "clip" = per mel band with the clip's own
# mean and variance over its present windows (the speaker's and the channel's spectral
# colouring drop out, the contour within the clip stays); "none" = the raw log-mel, what
# pretrained VGGish weights expect.
NORMALIZATIONS = ("band", "patch", "clip", "none")


def _conv(name, filters):
    return keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)


def _pool(name):
    return keras.layers.MaxPooling2D(2, strides=2, padding="same", name=name)


def vggish_layers(x, until: str = "conv4_2"):
    """Applies VGGish's conv stack to x [batch, frames, 64, 1], up to conv4_2 or pool4."""
    x = _pool("pool1")(_conv("conv1", 64)(x))
    x = _pool("pool2")(_conv("conv2", 128)(x))
    x = _pool("pool3")(_conv("conv3_2", 256)(_conv("conv3_1", 256)(x)))
    x = _conv("conv4_2", 512)(_conv("conv4_1", 512)(x))
    return _pool("pool4")(x) if until == "pool4" else x


@keras.saving.register_keras_serializable(package=PACKAGE)
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' batch norm on feature maps [patches, H, W, C] whose batch statistics (and
    so its moving ones) come from the patches of present windows only.

    Call it with `window_present` [patches] (1 = present; None = all). The output
    carries no Keras mask: nothing downstream reads one. It is named like the Keras
    class on purpose: a `.keras` file addresses a nested model's weights by class
    name, so front ends saved before it existed load into it.
    """

    def call(self, inputs, window_present=None, training=None):
        mask = None
        if window_present is not None:
            present = ops.cast(window_present, inputs.dtype)[:, None, None]
            mask = ops.ones_like(inputs[..., 0]) * present  # [patches, H, W], as Keras wants
        return super().call(inputs, training=training, mask=mask)

    def compute_mask(self, inputs, previous_mask=None):
        return None


SMALL_FILTERS = (16, 32, 64)
# How the conv stack's last feature map [time, bands, C] becomes the window's vector:
# "time_and_frequency" = its mean over both (C values); "time" = its mean over time only,
# the bands kept side by side (bands x C values), so where in the spectrum a pattern sits
# (the pitch and formant region of the voice) stays in the embedding; "band_stats" = the
# feature map's mean over both (C values) followed by the normalised patch's `BandStatistics`
# (by default 3 x 64 values): the learned patterns plus the spectral envelope, its spread and
# how fast it moves, what a linear model on log-mel statistics reads.
POOLINGS = ("time_and_frequency", "time", "band_stats")
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


def build_frontend(
    kind: str,
    frames: int,
    name: str = "audio_frontend",
    normalization: str = "band",
    filters: tuple[int, ...] = SMALL_FILTERS,
    pooling: str = "time_and_frequency",
    statistics: tuple[str, ...] = DEFAULT_BAND_STATISTICS,
) -> keras.Model:
    """A model from one window's log-mel patch [batch, frames, 64] to a vector [batch, C]
    (C = the last channels, bands x channels with `pooling="time"`, C + S x 64 with
    `pooling="band_stats"`; S x 64 band statistics for the `stats` kind, which has no
    convolutions and ignores `filters` and `pooling`; S = len(statistics), names from
    `BAND_STATISTICS`).

    The `small` model has a second input, `window_present` [batch] (1 = a present
    window), so that its batch norms' statistics come from present windows only;
    `filters` are its conv blocks' channels (one block, with a 2x2 max-pool, per entry);
    `pooling` is one of `POOLINGS`.
    """
    patch = keras.Input((frames, NUM_BANDS), name="log_mel_patch")
    inputs = patch
    if normalization == "patch":
        x = PatchStandardization(name="standardize")(patch)
    elif normalization == "band":
        x = keras.layers.Normalization(axis=-1, name="band_normalization")(patch)
    elif normalization in ("none", "clip"):  # "clip" needs the whole clip: WindowFrontend does it
        x = patch
    else:
        raise ValueError(f"log-mel normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    normalized = x
    if kind == "stats":  # no convolution: the window is its band statistics
        return keras.Model(inputs, BandStatistics(statistics, name="band_stats")(normalized), name=name)
    x = keras.layers.Reshape((frames, NUM_BANDS, 1), name="add_channel")(x)
    if kind == "vggish":
        x = vggish_layers(x)
    elif kind == "small":
        # Batch norm makes this stack learn on a few hundred clips; its moving statistics
        # use momentum 0.9 because at Keras' 0.99 they were still far from the batch
        # statistics after a few hundred updates and inference collapsed to one class.
        window_present = keras.Input((), name="window_present")
        inputs = [patch, window_present]
        for index, channels in enumerate(filters):
            x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"conv{index + 1}")(x)
            x = BatchNormalization(momentum=0.9, name=f"bn{index + 1}")(x, window_present)
            x = keras.layers.ReLU(name=f"relu{index + 1}")(x)
            x = _pool(f"pool{index + 1}")(x)
    else:
        raise ValueError(f"audio front end must be one of {FRONTENDS}, got {kind!r}")
    if pooling == "time_and_frequency":
        x = keras.layers.GlobalAveragePooling2D(name="spatial_mean")(x)
    elif pooling == "band_stats":
        x = keras.layers.GlobalAveragePooling2D(name="spatial_mean")(x)
        x = keras.layers.Concatenate(name="with_band_stats")(
            [x, BandStatistics(statistics, name="band_stats")(normalized)]
        )
    elif pooling == "time":
        x = keras.layers.Flatten(name="bands_side_by_side")(TimeMean(name="time_mean")(x))
    else:
        raise ValueError(f"front end pooling must be one of {POOLINGS}, got {pooling!r}")
    return keras.Model(inputs, x, name=name)


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


@keras.saving.register_keras_serializable(package=PACKAGE)
class TimeMean(keras.layers.Layer):
    """The mean over the time axis of feature maps [batch, time, bands, C] -> [batch, bands, C]."""

    def call(self, inputs):
        return ops.mean(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])


@keras.saving.register_keras_serializable(package=PACKAGE)
class PatchStandardization(keras.layers.Layer):
    """Zero mean, unit variance over each patch: loudness and channel gain drop out."""

    def call(self, inputs):
        mean = ops.mean(inputs, axis=(-2, -1), keepdims=True)
        std = ops.std(inputs, axis=(-2, -1), keepdims=True)
        return (inputs - mean) / (std + 1e-3)

    def compute_output_shape(self, input_shape):
        return input_shape


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
