"""The `model` section: the MATER network (paper section 2.2) and its variants."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mater_tf.config.fields import at_least, fraction, one_of, require, setting

MODALITIES = ("audio", "face")
ENCODERS = ("transformer", "lstm")
AUDIO_FRONTENDS = ("none", "vggish", "small", "stats")
# = mater_tf.layers.patch_frontend.NORMALIZATIONS (a test holds them equal; config imports no TF).
LOG_MEL_NORMALIZATIONS = ("band", "patch", "clip", "none")
# = mater_tf.models.mater.EMBEDDING_SCALES (a test holds them equal).
EMBEDDING_SCALES = ("sqrt_d_model", "none")
# = mater_tf.layers.patch_frontend.POOLINGS (a test holds them equal).
FRONTEND_POOLINGS = ("time_and_frequency", "time", "band_stats")
# = mater_tf.layers.band_statistics.BAND_STATISTICS / DEFAULT_BAND_STATISTICS (a test holds them equal).
BAND_STATISTICS = ("mean", "std", "change", "change_std", "modulation")
DEFAULT_BAND_STATISTICS = ("mean", "std", "change")
# = mater_tf.models.mater.WINDOW_POOLINGS (a test holds them equal).
WINDOW_POOLINGS = ("mean", "concat")


def learns_audio_frontend(audio_frontend: str, modalities) -> bool:
    """Whether a model learns its audio front end: it names one and has an audio branch.

    Then its audio input is log-mel patches, not embeddings. The model, the task, export and
    predict all ask this one function (with a saved model's or export's own fields).
    """
    return audio_frontend != "none" and "audio" in modalities


@dataclasses.dataclass
class AugmentConfig:
    """On-the-fly augmentation of the log-mel patches of a learned audio front end (training only)."""

    KEY: ClassVar[str] = "model.augment"

    gain_db: float = setting(
        0.0, "Random level change per clip, uniform in [-gain_db, gain_db] dB (0 = off)."
    )
    time_masks: int = setting(0, "SpecAugment time masks per window (0 = off).")
    time_mask_frames: int = setting(8, "Longest time mask, in log-mel frames (10 ms each).")
    freq_masks: int = setting(0, "SpecAugment frequency masks per window (0 = off).")
    freq_mask_bands: int = setting(8, "Longest frequency mask, in mel bands (of 64).")
    freq_warp: float = setting(
        0.0,
        "Random stretch of the mel-band axis per clip, by a factor uniform in [1 - w, 1 + w] "
        "(vocal tract length perturbation on the mel scale; 0 = off, below 0.5).",
    )

    def validate(self) -> None:
        for name in ("gain_db", "time_masks", "time_mask_frames", "freq_masks", "freq_mask_bands"):
            at_least(self, name, 0)
        require(
            self.freq_mask_bands <= 64,
            f"model.augment.freq_mask_bands={self.freq_mask_bands} must be <= 64 (the mel bands): "
            "e.g. --set model.augment.freq_mask_bands=8",
        )
        at_least(self, "freq_warp", 0)
        require(
            self.freq_warp < 0.5,
            f"model.augment.freq_warp={self.freq_warp} must be below 0.5 (a factor of 1 +- w on the mel "
            "bands): e.g. --set model.augment.freq_warp=0.1",
        )

    @property
    def active(self) -> bool:
        return bool(
            self.gain_db
            or self.freq_warp
            or self.time_masks
            and self.time_mask_frames
            or self.freq_masks
            and self.freq_mask_bands
        )


@dataclasses.dataclass
class ModelConfig:
    """The MATER network (paper section 2.2) and its variants."""

    KEY: ClassVar[str] = "model"

    modalities: list[str] = setting(list(MODALITIES), "Branches to build: audio, face or both.")
    encoder: str = setting("transformer", "'transformer' (MATER) or 'lstm' (baseline).")
    positional_encoding: bool = setting(True, "Add the sinusoidal PE before the encoders.")
    attention: bool = setting(True, "Multi-head self-attention; off keeps the feed-forward.")
    num_layers: int = setting(6, "Encoder layers per modality (paper: 6).")
    d_model: int = setting(512, "Width of the encoders (embeddings are projected to it).")
    num_heads: int = setting(8, "Attention heads; must divide d_model.")
    ff_dim: int = setting(2048, "Hidden size of the position-wise feed-forward layer.")
    dropout: float = setting(0.1, "Dropout in the encoders and the prediction layers.")
    head_hidden_dim: int = setting(256, "Width of the first of the two FC layers.")
    audio_frontend: str = setting(
        "none",
        "none (audio embeddings from prepare), or vggish / small: a conv front end on the log-mel, in the "
        "model, or stats: each window's per-band log-mel statistics (no convolution).",
    )
    log_mel_normalization: str = setting(
        "band",
        "Front end input: band (per mel band, with the training split's statistics; keeps the "
        "voice's level), patch (each patch to zero mean, unit variance), clip (per mel band with the "
        "clip's own statistics: the speaker's spectral colouring drops out) or none (raw log-mel, "
        "what pretrained VGGish expects).",
    )
    audio_frontend_filters: list[int] = setting(
        [16, 32, 64],
        "Channels of the small front end's conv blocks (each block: 3x3 conv, batch norm, ReLU, 2x2 max-pool).",
    )
    audio_frontend_pooling: str = setting(
        "time_and_frequency",
        "How the front end's last feature map becomes a window's vector: time_and_frequency (its mean) "
        "or time (mean over time, the mel bands kept side by side: where in the spectrum a pattern sits "
        "stays in) or band_stats (its mean, then the normalised patch's per-band statistics of "
        "model.band_statistics: by default mean, standard deviation and mean frame-to-frame change, "
        "192 more values).",
    )
    band_statistics: list[str] = setting(
        list(DEFAULT_BAND_STATISTICS),
        "What the stats front end (and the band_stats pooling) computes per mel band over each "
        "window, in this order: mean (the spectral envelope), std (its spread), change (mean absolute "
        "frame-to-frame difference: how fast the band moves), change_std (the spread of those "
        "differences: how unevenly it moves), modulation (64 values: for 16 groups of 4 adjacent bands, "
        "the loudness contour's modulation spectrum averaged over 1.5-5, 5-9, 9-18 and 18-50 Hz, "
        "logged: the voice's rhythm).",
    )
    audio_frontend_trainable: bool = setting(True, "Train the audio front end (false freezes it).")
    audio_frontend_weights: str = setting("", "VGGish weights for the vggish front end ('' = random init).")
    window_pooling: str = setting(
        "mean",
        "How a branch's encoded windows become one vector for its head: mean (over the present "
        "windows, the paper's eq. 2) or concat (side by side, absent windows zero: the head sees "
        "which window said what).",
    )
    ensemble: int = setting(
        1,
        "Members of a deep ensemble trained side by side (each its own initial weights, dropout and "
        "loss, on the same batches); the outputs average their probabilities. 1 = one network.",
    )
    utterance_functionals: bool = setting(
        False,
        "With a learned audio front end: the audio branch also reads the whole clip as one vector, "
        "functionals (moments, percentiles, ranges, trend, where the extremes fall) of the log-mel's "
        "and the voice descriptors' frames over the present windows, through a linear layer whose logits "
        "add to the windows' (records from mater-tf prepare --keep-log-mel).",
    )
    utterance_l2: float = setting(0.01, "L2 penalty of the utterance functionals' linear layer.")
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    embedding_scale: str = setting(
        "sqrt_d_model",
        "Scale of the projected embeddings before the PE: sqrt_d_model (Vaswani et al. 3.4: the "
        "l2-normalised embeddings then meet the PE at the same order) or none (models saved before "
        "the option; the PE then swamps the embeddings).",
    )

    @property
    def learns_audio(self) -> bool:
        """Whether the model learns its audio front end (`learns_audio_frontend`)."""
        return learns_audio_frontend(self.audio_frontend, self.modalities)

    def validate(self) -> None:
        """Refuses a network that cannot be built (each field, then how they fit together)."""
        require(
            bool(self.modalities) and set(self.modalities) <= set(MODALITIES),
            f"model.modalities={self.modalities} must be a non-empty subset of {list(MODALITIES)}: "
            f"e.g. --set model.modalities={','.join(MODALITIES)}",
        )
        require(
            len(set(self.modalities)) == len(self.modalities),
            f"model.modalities={self.modalities} repeats a name: "
            f"--set model.modalities={','.join(dict.fromkeys(self.modalities))}",
        )
        one_of(self, "encoder", ENCODERS)
        one_of(self, "audio_frontend", AUDIO_FRONTENDS)
        one_of(self, "log_mel_normalization", LOG_MEL_NORMALIZATIONS)
        one_of(self, "embedding_scale", EMBEDDING_SCALES)
        one_of(self, "audio_frontend_pooling", FRONTEND_POOLINGS)
        one_of(self, "window_pooling", WINDOW_POOLINGS)
        require(
            bool(self.band_statistics)
            and set(self.band_statistics) <= set(BAND_STATISTICS)
            and len(set(self.band_statistics)) == len(self.band_statistics),
            f"model.band_statistics={list(self.band_statistics)} must be distinct names from "
            f"{list(BAND_STATISTICS)}: e.g. --set model.band_statistics={','.join(DEFAULT_BAND_STATISTICS)}",
        )
        require(
            tuple(self.band_statistics) == DEFAULT_BAND_STATISTICS
            or self.audio_frontend == "stats"
            or self.audio_frontend_pooling == "band_stats",
            f"model.band_statistics={list(self.band_statistics)} shapes the stats front end or the "
            "band_stats pooling, which this model does not have: --set model.audio_frontend_pooling=band_stats "
            f"(a conv front end), or --set model.band_statistics={','.join(DEFAULT_BAND_STATISTICS)}",
        )
        self.augment.validate()
        require(
            not (self.augment.gain_db and self.log_mel_normalization == "clip"),
            f"model.augment.gain_db={self.augment.gain_db} does nothing with model.log_mel_normalization=clip "
            "(the clip's own mean removes one gain over the clip): --set model.augment.gain_db=0, or another "
            "normalization",
        )
        require(
            not self.augment.active or self.audio_frontend != "none",
            "model.augment needs a learned audio front end (it augments log-mel patches): "
            "--set model.audio_frontend=small, or leave model.augment at its defaults",
        )
        require(
            not self.utterance_functionals or self.learns_audio,
            "model.utterance_functionals reads the log-mel and voice descriptors of the audio branch's "
            "learned front end: --set model.audio_frontend=stats (with the audio modality), or "
            "--set model.utterance_functionals=false",
        )
        at_least(self, "utterance_l2", 0)
        at_least(self, "num_layers", 0)
        at_least(self, "ensemble", 1)
        for name in ("d_model", "num_heads", "ff_dim", "head_hidden_dim"):
            at_least(self, name, 1)
        require(
            self.audio_frontend != "stats"
            or (
                list(self.audio_frontend_filters) == [16, 32, 64]
                and self.audio_frontend_pooling == "time_and_frequency"
            ),
            f"model.audio_frontend_filters={list(self.audio_frontend_filters)} / audio_frontend_pooling="
            f"{self.audio_frontend_pooling} shape a conv front end; the stats front end has no convolution: "
            "--set model.audio_frontend=small, or leave them at 16,32,64 / time_and_frequency",
        )
        require(
            self.audio_frontend != "vggish" or list(self.audio_frontend_filters) == [16, 32, 64],
            f"model.audio_frontend_filters={list(self.audio_frontend_filters)} sets the small front end's "
            "channels; the vggish front end has VGGish's own: --set model.audio_frontend=small, or leave "
            "audio_frontend_filters at 16,32,64",
        )
        require(
            bool(self.audio_frontend_filters) and min(self.audio_frontend_filters) >= 1,
            f"model.audio_frontend_filters={list(self.audio_frontend_filters)} must be one or more channel "
            "counts >= 1: e.g. --set model.audio_frontend_filters=16,32,64",
        )
        fraction(self, "dropout")
        divisors = [n for n in range(1, self.d_model + 1) if self.d_model % n == 0]
        require(
            self.d_model % self.num_heads == 0,
            f"model.num_heads={self.num_heads} must divide model.d_model={self.d_model}: e.g. --set "
            f"model.num_heads={max(n for n in divisors if n <= self.num_heads)} (divisors: "
            f"{', '.join(map(str, divisors))})",
        )
        if self.audio_frontend_weights:
            fixes = []
            if self.audio_frontend != "vggish":
                fixes.append("--set model.audio_frontend=vggish")
            if self.log_mel_normalization != "none":
                fixes.append("--set model.log_mel_normalization=none")
            require(
                not fixes,
                f"model.audio_frontend_weights={self.audio_frontend_weights!r} are pretrained VGGish "
                f"weights, which need the vggish front end on the raw log-mel: add {' '.join(fixes)} "
                "(or --set model.audio_frontend_weights= to start from random weights)",
            )
