"""Encoding a `ClipRecord` as the contract's SequenceExample (the writer's side)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mater_tf.data.schema.contract import SCHEMA_VERSION, SEQUENCE, ClipRecord


def _bytes(value: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))


def _int(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in np.ravel(values)]))


def _float(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(values).astype(np.float32)))


def to_sequence_example(clip: ClipRecord) -> tf.train.SequenceExample:
    """Encodes a clip as the contract's SequenceExample."""
    num_windows = len(clip.audio_valid)
    for name in ("audio_embedding", "face_embedding", "face_valid", "face_frames_found"):
        if len(getattr(clip, name)) != num_windows:
            raise ValueError(
                f"clip {clip.clip_id}: {name} has {len(getattr(clip, name))} windows, expected {num_windows}"
            )
    context = {
        "clip/id": _bytes(clip.clip_id),
        "clip/corpus": _bytes(clip.corpus),
        "clip/subject": _bytes(clip.subject),
        "clip/label": _int([clip.label]),
        "clip/label_name": _bytes(clip.label_name),
        "clip/duration": _float([clip.duration]),
        "clip/num_windows": _int([num_windows]),
        "window/seconds": _float([clip.window_seconds]),
        "audio/embedder": _bytes(clip.audio_embedder),
        "face/embedder": _bytes(clip.face_embedder),
        "schema/version": _int([SCHEMA_VERSION]),
    }
    per_window = {
        "audio/embedding": clip.audio_embedding,
        "face/embedding": clip.face_embedding,
        "face/frames_found": np.reshape(clip.face_frames_found, (-1, 1)),
        "audio/valid": np.reshape(clip.audio_valid, (-1, 1)),
        "face/valid": np.reshape(clip.face_valid, (-1, 1)),
    }
    feature_lists = {}
    for key, (dtype, _, _) in SEQUENCE.items():
        encode = _float if dtype == tf.float32 else _int
        feature_lists[key] = tf.train.FeatureList(feature=[encode(row) for row in per_window[key]])
    if clip.audio_log_mel is not None:
        feature_lists["audio/log_mel"] = tf.train.FeatureList(feature=[_float(w) for w in clip.audio_log_mel])
    if clip.audio_voice_descriptors is not None:
        feature_lists["audio/voice_descriptors"] = tf.train.FeatureList(
            feature=[_float(w) for w in clip.audio_voice_descriptors]
        )
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=feature_lists),
    )
