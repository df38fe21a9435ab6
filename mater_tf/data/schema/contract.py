"""The contract's tables: every record key with its dtype, width and meaning, the schema
version stored in every record, and `ClipRecord`, one clip in memory."""

from __future__ import annotations

import dataclasses

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
