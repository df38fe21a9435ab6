"""The TFRecord data contract: the one definition of a clip record.

One `tf.train.SequenceExample` per clip. The context holds the clip's identity
and windowing, the feature lists hold one entry per window. The writer, the
parser, the synthetic corpus and the serving signature all derive from the
tables below, and `schema/version` is stored in every record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

SCHEMA_VERSION = 1

# key -> (dtype, meaning). Context entries are scalars.
CONTEXT = {
    "clip/id": (tf.string, "unique clip id (file stem)"),
    "clip/corpus": (tf.string, "corpus name: ravdess, cremad, synthetic, ..."),
    "clip/subject": (tf.string, "speaker id; folds are made of whole subjects"),
    "clip/label": (tf.int64, "class index into the corpus's label set"),
    "clip/label_name": (tf.string, "class name"),
    "clip/duration": (tf.float32, "clip length in seconds"),
    "clip/num_windows": (tf.int64, "T, the number of windows (= feature list length)"),
    "window/seconds": (tf.float32, "window length d in seconds"),
    "audio/embedder": (tf.string, "audio embedder name and version"),
    "face/embedder": (tf.string, "face embedder name and version"),
    "schema/version": (tf.int64, "version of this contract"),
}

# key -> (dtype, width or None for an embedding of the corpus's size, meaning).
SEQUENCE = {
    "audio/embedding": (tf.float32, None, "l2-normalised audio embedding (D_a)"),
    "face/embedding": (tf.float32, None, "l2-normalised face embedding (D_v)"),
    "face/frames_found": (tf.int64, 1, "frames of the window with a face found"),
    "audio/valid": (tf.int64, 1, "1 if the window holds audio of the clip"),
    "face/valid": (tf.int64, 1, "1 if a face was found in the window"),
}

# Optional feature lists (written by `mater-tf prepare --keep-log-mel`).
OPTIONAL_SEQUENCE = {
    "audio/log_mel": (tf.float32, "the window's VGGish log-mel frames, flattened [F * 64]"),
    "audio/voice_descriptors": (
        tf.float32,
        "the window's per-frame voice descriptors on the log-mel's frames, flattened [F * 18] "
        "(mater_tf.features.voice_descriptors)",
    ),
}
LOG_MEL_BANDS = 64
# = mater_tf.features.voice_descriptors.NUM_DESCRIPTORS (a test holds them equal).
VOICE_DESCRIPTORS = 18

# Model input names <- record keys.
MODEL_INPUTS = {
    "audio": ("audio_embedding", "audio_valid"),
    "face": ("face_embedding", "face_valid"),
}
LOG_MEL_INPUT = "audio_log_mel"
VOICE_DESCRIPTORS_INPUT = "audio_voice_descriptors"


def member_key(output: str) -> str:
    """The model output holding every ensemble member's version of `output` ("logits" ->
    "member_logits", "audio_logits" -> "audio_member_logits"): [batch, members, classes]."""
    return "member_logits" if output == "logits" else output.replace("_logits", "_member_logits")


def input_names(modalities, audio_log_mel: bool = False, voice_descriptors: bool = False) -> list[str]:
    """The model's input names: embeddings and masks, or log-mel patches for the audio branch
    (and the voice descriptors of its utterance functionals)."""
    names = []
    for modality in modalities:
        embedding, valid = MODEL_INPUTS[modality]
        names += [LOG_MEL_INPUT if modality == "audio" and audio_log_mel else embedding, valid]
        if modality == "audio" and voice_descriptors:
            names.append(VOICE_DESCRIPTORS_INPUT)
    return names


@dataclasses.dataclass(frozen=True)
class ClipRecord:
    """One clip in memory, as written to and read from a record."""

    clip_id: str
    corpus: str
    subject: str
    label: int
    label_name: str
    duration: float
    window_seconds: float
    audio_embedding: np.ndarray  # [T, D_a] float32
    face_embedding: np.ndarray  # [T, D_v] float32
    audio_valid: np.ndarray  # [T] 0/1
    face_valid: np.ndarray  # [T] 0/1
    face_frames_found: np.ndarray  # [T] int
    audio_embedder: str = ""
    face_embedder: str = ""
    audio_log_mel: np.ndarray | None = None  # [T, F, 64] float32, optional
    audio_voice_descriptors: np.ndarray | None = None  # [T, F, 18] float32, optional


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
