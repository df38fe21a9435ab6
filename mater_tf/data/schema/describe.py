"""Checking a record against the contract without a parsing spec, and describing what it holds."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from mater_tf.data.schema.contract import CONTEXT, LOG_MEL_BANDS, SCHEMA_VERSION, SEQUENCE, VOICE_DESCRIPTORS


def describe_record(serialized: bytes) -> Mapping[str, object]:
    """Reads a record's shape without a spec: T, D_a, D_v, label, subject, and which
    feature lists hold non-finite values (`non_finite`, empty for a sound record).

    Raises:
        ValueError: naming the first way the record breaks the contract.
    """
    example = tf.train.SequenceExample.FromString(serialized)
    context = example.context.feature
    lists = example.feature_lists.feature_list
    missing = [key for key in CONTEXT if key not in context] + [key for key in SEQUENCE if key not in lists]
    if missing:
        raise ValueError(f"missing keys {missing}")
    version = context["schema/version"].int64_list.value[0]
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema/version {version}, this mater-tf reads {SCHEMA_VERSION}")
    num_windows = context["clip/num_windows"].int64_list.value[0]
    lengths = {key: len(lists[key].feature) for key in SEQUENCE}
    if any(length != num_windows for length in lengths.values()):
        raise ValueError(f"feature lists have {lengths} windows, clip/num_windows says {num_windows}")
    if num_windows == 0:
        raise ValueError("clip has no windows")
    log_mel_values = (
        len(lists["audio/log_mel"].feature[0].float_list.value) if "audio/log_mel" in lists else 0
    )
    if log_mel_values % LOG_MEL_BANDS:
        raise ValueError(
            f"audio/log_mel holds {log_mel_values} values per window, not frames of {LOG_MEL_BANDS}"
        )
    for key, width in (
        ("audio/log_mel", log_mel_values),
        ("audio/voice_descriptors", log_mel_values // LOG_MEL_BANDS * VOICE_DESCRIPTORS),
    ):
        if key not in lists:
            continue
        sizes = {len(feature.float_list.value) for feature in lists[key].feature}
        if key != "audio/log_mel" and not log_mel_values:
            raise ValueError(f"{key} without audio/log_mel")
        if len(lists[key].feature) != num_windows or sizes != {width} or not width:
            raise ValueError(
                f"{key} has {len(lists[key].feature)} windows of {sorted(sizes)} values, expected "
                f"{num_windows} of {width}"
            )
    non_finite = sorted(
        key
        for key, feature_list in lists.items()
        if feature_list.feature
        and feature_list.feature[0].WhichOneof("kind") == "float_list"
        and not all(np.isfinite(feature.float_list.value).all() for feature in feature_list.feature)
    )
    return {
        "non_finite": non_finite,
        "log_mel_frames": log_mel_values // LOG_MEL_BANDS,
        "voice_descriptors": "audio/voice_descriptors" in lists,
        "num_windows": int(num_windows),
        "audio_dim": len(lists["audio/embedding"].feature[0].float_list.value),
        "face_dim": len(lists["face/embedding"].feature[0].float_list.value),
        # Whether any window holds the modality (a clip without a face trains no face branch).
        "modalities_present": tuple(
            modality
            for modality in ("audio", "face")
            if any(feature.int64_list.value[0] for feature in lists[f"{modality}/valid"].feature)
        ),
        "label": int(context["clip/label"].int64_list.value[0]),
        "label_name": context["clip/label_name"].bytes_list.value[0].decode(),
        "subject": context["clip/subject"].bytes_list.value[0].decode(),
        "clip_id": context["clip/id"].bytes_list.value[0].decode(),
        "corpus": context["clip/corpus"].bytes_list.value[0].decode(),
        "window_seconds": float(context["window/seconds"].float_list.value[0]),
        "audio_embedder": context["audio/embedder"].bytes_list.value[0].decode(),
        "face_embedder": context["face/embedder"].bytes_list.value[0].decode(),
    }
