"""Front ends on log-mel patches [batch, frames, 64] (pure Keras): convolutional, or statistics.

`vggish_layers` is VGGish's conv part (its layers carry the checkpoint's
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

from mater_tf.layers.band_statistics import DEFAULT_BAND_STATISTICS, BandStatistics
from mater_tf.layers.batch_normalization import BatchNormalization
from mater_tf.layers.patch_standardization import PatchStandardization
from mater_tf.layers.time_mean import TimeMean

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


SMALL_FILTERS = (16, 32, 64)
# How the conv stack's last feature map [time, bands, C] becomes the window's vector:
# "time_and_frequency" = its mean over both (C values); "time" = its mean over time only,
# the bands kept side by side (bands x C values), so where in the spectrum a pattern sits
# (the pitch and formant region of the voice) stays in the embedding; "band_stats" = the
# feature map's mean over both (C values) followed by the normalised patch's `BandStatistics`
# (by default 3 x 64 values): the learned patterns plus the spectral envelope, its spread and
# how fast it moves, what a linear model on log-mel statistics reads.
POOLINGS = ("time_and_frequency", "time", "band_stats")


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
