"""The audio branch's input when the model learns its audio front end: log-mel patches in."""

from __future__ import annotations

import keras

from mater_tf.layers import LogMelAugment, UtteranceFunctionals, WindowFrontend
from mater_tf.layers.patch_frontend import NUM_BANDS

# The voice descriptors per log-mel frame (= mater_tf.data.schema.VOICE_DESCRIPTORS; a test
# holds them equal).
VOICE_DESCRIPTORS = 18


class LogMelInput:
    """The inputs `audio_log_mel` [batch, T, F, 64] (and `audio_voice_descriptors` [batch, T, F,
    18] with utterance functionals), turned into window embeddings [batch, T, C] by the front
    end (`WindowFrontend`, after `LogMelAugment` in training) and, with utterance functionals,
    into the clip's utterance vector: the functionals of its present windows' frames
    (`UtteranceFunctionals`, on the clip as recorded, not augmented), standardised with the
    training split's statistics (`utterance_normalization`, adapted by the task).

    One per model: an ensemble's members share it. Its layers (`audio_frontend`,
    `log_mel_augment`, `utterance_functionals`, `utterance_normalization`) sit in MATER's one
    functional graph under those names, which the task and saved models look up.

    Args:
        kind, frames, normalization, filters, pooling, statistics: the `WindowFrontend`'s.
        augment: the arguments of a `LogMelAugment`, or None for no augmentation.
        utterance_functionals: also read the voice descriptors and give the utterance vector.
    """

    def __init__(
        self, kind, frames, *, normalization, filters, pooling, statistics, augment, utterance_functionals
    ):
        if not frames:
            raise ValueError("an audio front end needs log_mel_frames (frames per window)")
        self.frames = frames
        self.frontend = WindowFrontend(
            kind,
            frames,
            normalization=normalization,
            filters=filters,
            pooling=pooling,
            statistics=statistics,
            name="audio_frontend",
        )
        self.augment = LogMelAugment(**augment, name="log_mel_augment") if augment else None
        self.functionals = self.utterance_normalization = None
        if utterance_functionals:
            self.functionals = UtteranceFunctionals(name="utterance_functionals")
            self.utterance_normalization = keras.layers.Normalization(axis=-1, name="utterance_normalization")

    def inputs(self, num_windows) -> dict:
        """The named `keras.Input`s this input stage reads, for T = `num_windows` (None = any)."""
        inputs = {"audio_log_mel": keras.Input((num_windows, self.frames, NUM_BANDS), name="audio_log_mel")}
        if self.functionals is not None:
            inputs["audio_voice_descriptors"] = keras.Input(
                (num_windows, self.frames, VOICE_DESCRIPTORS), name="audio_voice_descriptors"
            )
        return inputs

    def __call__(self, inputs: dict, valid):
        """(window embeddings [batch, T, C], utterance vector [batch, U] or None) from `inputs`
        (as `inputs()` gives them) under `valid` [batch, T] (1 = window present)."""
        log_mel = inputs["audio_log_mel"]
        embeddings = self.frontend(self.augment(log_mel) if self.augment else log_mel, valid)
        utterance = None
        if self.functionals is not None:
            utterance = self.utterance_normalization(
                self.functionals(log_mel, inputs["audio_voice_descriptors"], valid)
            )
        return embeddings, utterance
