"""Parsing records into model inputs: the parsing spec derived from the contract's tables, one
record at a time (the input pipeline) or a batch at once (the serving path)."""

from __future__ import annotations

import tensorflow as tf

from mater_tf.data.schema.contract import CONTEXT, LOG_MEL_BANDS, SEQUENCE, VOICE_DESCRIPTORS
from mater_tf.data.schema.model_names import LOG_MEL_INPUT, VOICE_DESCRIPTORS_INPUT


def feature_spec(
    audio_dim: int, face_dim: int, log_mel_frames: int = 0, voice_descriptors: bool = False
) -> tuple[dict, dict]:
    """The parsing spec (context, sequence) for embeddings of the given sizes.

    `log_mel_frames` > 0 also parses the optional per-window log-mel patches, and with
    `voice_descriptors` the voice descriptors on their frames.
    """
    context = {key: tf.io.FixedLenFeature([], dtype) for key, (dtype, _) in CONTEXT.items()}
    widths = {"audio/embedding": audio_dim, "face/embedding": face_dim}
    sequence = {
        key: tf.io.FixedLenSequenceFeature([width or widths[key]], dtype)
        for key, (dtype, width, _) in SEQUENCE.items()
    }
    if log_mel_frames:
        sequence["audio/log_mel"] = tf.io.FixedLenSequenceFeature(
            [log_mel_frames * LOG_MEL_BANDS], tf.float32
        )
        if voice_descriptors:
            sequence["audio/voice_descriptors"] = tf.io.FixedLenSequenceFeature(
                [log_mel_frames * VOICE_DESCRIPTORS], tf.float32
            )
    return context, sequence


def parse_serialized(
    serialized: tf.Tensor,
    audio_dim: int,
    face_dim: int,
    log_mel_frames: int = 0,
    voice_descriptors: bool = False,
) -> dict:
    """Parses one serialized record into model inputs plus its context.

    Returns a dict with `audio_embedding` [T, D_a], `face_embedding` [T, D_v],
    `audio_valid` / `face_valid` [T] float32 (1 = window present), and the
    context values under `label`, `subject`, `clip_id`, `label_name`.
    """
    context_spec, sequence_spec = feature_spec(audio_dim, face_dim, log_mel_frames, voice_descriptors)
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=context_spec, sequence_features=sequence_spec
    )
    return {
        **_frame_inputs(sequence, [-1], log_mel_frames, voice_descriptors),
        "audio_embedding": sequence["audio/embedding"],
        "face_embedding": sequence["face/embedding"],
        "audio_valid": tf.cast(sequence["audio/valid"][:, 0], tf.float32),
        "face_valid": tf.cast(sequence["face/valid"][:, 0], tf.float32),
        "label": context["clip/label"],
        "subject": context["clip/subject"],
        "clip_id": context["clip/id"],
        "label_name": context["clip/label_name"],
    }


def parse_batch(
    serialized: tf.Tensor,
    audio_dim: int,
    face_dim: int,
    log_mel_frames: int = 0,
    voice_descriptors: bool = False,
) -> dict:
    """Parses a [batch] string tensor of records at once (the serving path): model inputs
    [batch, T, ...], clips shorter than the longest padded with absent windows."""
    context_spec, sequence_spec = feature_spec(audio_dim, face_dim, log_mel_frames, voice_descriptors)
    _, sequence, _ = tf.io.parse_sequence_example(
        serialized, context_features=context_spec, sequence_features=sequence_spec
    )
    parsed = {
        "audio_embedding": sequence["audio/embedding"],
        "face_embedding": sequence["face/embedding"],
        "audio_valid": tf.cast(sequence["audio/valid"][..., 0], tf.float32),
        "face_valid": tf.cast(sequence["face/valid"][..., 0], tf.float32),
    }
    if log_mel_frames:
        windows = tf.shape(sequence["audio/log_mel"])[:2]
        parsed.update(_frame_inputs(sequence, [windows[0], windows[1]], log_mel_frames, voice_descriptors))
    return parsed


def _frame_inputs(sequence: dict, windows: list, log_mel_frames: int, voice_descriptors: bool) -> dict:
    """The per-frame model inputs of parsed feature lists, each window's frames unflattened:
    `windows` is the leading shape ([-1] for one record, [batch, T] for a batch)."""
    if not log_mel_frames:
        return {}
    inputs = {LOG_MEL_INPUT: tf.reshape(sequence["audio/log_mel"], windows + [log_mel_frames, LOG_MEL_BANDS])}
    if voice_descriptors:
        inputs[VOICE_DESCRIPTORS_INPUT] = tf.reshape(
            sequence["audio/voice_descriptors"], windows + [log_mel_frames, VOICE_DESCRIPTORS]
        )
    return inputs
