"""A synthetic audio-visual corpus, deterministic from a seed.

It is built so that the parts of MATER have something to find:

* Emotion evidence sits in a few consecutive windows; where they start is
  drawn per clip and independently per modality, so the evidence moves in
  time and differs between audio and face.
* Each modality alone is ambiguous: classes 0 and 1 share one audio
  prototype (only the face tells them apart), classes 2 and 3 share one face
  prototype (only the voice tells them apart). Late fusion is needed.
* Classes 4 and 5 share their prototypes in both modalities and differ only
  in *when* the evidence comes: in the first half of the clip for class 4,
  in the second half for class 5. Only an order-aware model (positional
  encoding, or the LSTM) can separate them.
* Every speaker adds a fixed offset to all their windows (a speaker identity
  the model must not rely on), clips have different lengths (the tail
  windows are masked), and some windows lose the face (masked).

Records follow the data contract exactly, with corpus name `synthetic`, so
the real input pipeline reads them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from mater_tf.config import SyntheticConfig
from mater_tf.data import records, schema

log = logging.getLogger(__name__)

CORPUS = "synthetic"
LABEL_NAMES = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
WINDOW_SECONDS = 0.5
EMBEDDER = "synthetic-v1"


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def label_names(num_classes: int) -> list[str]:
    return [LABEL_NAMES[i] if i < len(LABEL_NAMES) else f"class_{i}" for i in range(num_classes)]


def _prototypes(rng: np.random.Generator, num_classes: int, dim: int, shared_pair: tuple) -> np.ndarray:
    prototypes = _unit(rng.standard_normal((num_classes, dim)))
    prototypes[shared_pair[1]] = prototypes[shared_pair[0]]
    prototypes[5] = prototypes[4]  # timing-only pair
    return prototypes


def _evidence_start(rng, label: int, valid: int, evidence: int) -> int:
    """Where the evidence starts; classes 4/5 are early/late halves."""
    half = valid // 2
    last = valid - evidence
    if label == 4:
        return int(rng.integers(0, max(0, half - evidence) + 1))
    if label == 5:
        return int(rng.integers(min(half, last), last + 1))
    return int(rng.integers(0, last + 1))


def generate_clips(config: SyntheticConfig) -> list[schema.ClipRecord]:
    """Draws the whole corpus from `config.seed`."""
    rng = np.random.default_rng(config.seed)
    num_windows, names = config.num_windows, label_names(config.num_classes)
    dims = {"audio": config.audio_dim, "face": config.face_dim}
    prototypes = {
        "audio": _prototypes(rng, config.num_classes, config.audio_dim, (0, 1)),
        "face": _prototypes(rng, config.num_classes, config.face_dim, (2, 3)),
    }
    clips = []
    for subject in range(config.num_subjects):
        offsets = {m: _unit(rng.standard_normal(d)) for m, d in dims.items()}
        for clip_number in range(config.clips_per_subject):
            label = clip_number % config.num_classes
            valid = int(rng.integers(config.min_valid_windows, num_windows + 1))
            audio_valid = (np.arange(num_windows) < valid).astype(np.int64)
            face_valid = audio_valid * (rng.random(num_windows) >= config.face_dropout)
            embeddings = {}
            for modality, dim in dims.items():
                noise = rng.standard_normal((num_windows, dim)) / np.sqrt(dim)
                windows = noise + offsets[modality]
                start = _evidence_start(rng, label, valid, config.evidence_windows)
                stop = start + config.evidence_windows
                windows[start:stop] += config.signal_strength * prototypes[modality][label]
                embeddings[modality] = _unit(windows).astype(np.float32)
            embeddings["audio"] *= audio_valid[:, None]
            embeddings["face"] *= face_valid[:, None]
            clips.append(
                schema.ClipRecord(
                    clip_id=f"syn-s{subject:03d}-c{clip_number:04d}",
                    corpus=CORPUS,
                    subject=f"s{subject:03d}",
                    label=label,
                    label_name=names[label],
                    duration=valid * WINDOW_SECONDS,
                    window_seconds=WINDOW_SECONDS,
                    audio_embedding=embeddings["audio"],
                    face_embedding=embeddings["face"],
                    audio_valid=audio_valid,
                    face_valid=face_valid.astype(np.int64),
                    face_frames_found=face_valid * 12,
                    audio_embedder=EMBEDDER,
                    face_embedder=EMBEDDER,
                )
            )
    return clips


def write_corpus(config: SyntheticConfig, out_dir: str | Path) -> Path:
    """Writes the corpus as record shards plus manifest.json, once per config.

    A folder that already holds the same corpus (same config) is reused.
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.json"
    wanted = dataclasses.asdict(config)
    if manifest_path.is_file():
        if json.loads(manifest_path.read_text()).get("synthetic_config") == wanted:
            return out_dir
    clips = generate_clips(config)
    shards = records.write_shards(clips, out_dir, prefix=CORPUS)
    records.write_json(
        manifest_path,
        {
            "corpus": CORPUS,
            "note": "SYNTHETIC data generated by mater-tf, not recordings of people",
            "num_clips": len(clips),
            "num_windows": config.num_windows,
            "window_seconds": WINDOW_SECONDS,
            "label_names": label_names(config.num_classes),
            "shards": [p.name for p in shards],
            "synthetic_config": wanted,
        },
    )
    log.info("wrote %d synthetic clips to %s", len(clips), out_dir)
    return out_dir
