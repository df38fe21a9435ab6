"""Indexing records: every record read once and checked against the data contract; the
shapes, label set and every clip's subject they hold."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import tensorflow as tf

from mater_tf.data.records.layout import MANIFEST_FILE, list_shards
from mater_tf.data.schema import describe_record
from mater_tf.errors import UserError

# What a trained model must remember of its records (RecordIndex.metadata()).
METADATA_KEYS = (
    "corpus",
    "label_names",
    "num_windows",
    "window_seconds",
    "audio_dim",
    "face_dim",
    "audio_embedder",
    "face_embedder",
    "log_mel_frames",
)


@dataclasses.dataclass(frozen=True)
class RecordIndex:
    """What a set of shards holds: shapes, label set, and every clip's subject."""

    files: tuple
    num_windows: int
    audio_dim: int
    face_dim: int
    label_names: tuple  # index -> name
    corpus: str
    window_seconds: float
    audio_embedder: str
    face_embedder: str
    log_mel_frames: int  # 0 when the records hold no log-mel patches
    clip_ids: tuple
    subjects: tuple  # per clip
    labels: tuple  # per clip
    voice_descriptors: bool = False  # the records hold the voice descriptors beside the log-mel
    modalities_present: tuple = ()  # per clip: the modalities with at least one window

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def subject_ids(self) -> list[str]:
        from mater_tf.data.folds import subject_order

        return sorted(set(self.subjects), key=subject_order)

    def metadata(self) -> dict:
        """What a model trained on these records must know to be used later."""
        values = {key: getattr(self, key) for key in METADATA_KEYS}
        values["label_names"] = list(self.label_names)
        return values


def index_records(source: str | Path) -> RecordIndex:
    """Reads every record once, checks it against the contract, and indexes it.

    Raises:
        UserError: naming the file when a shard is unreadable or a record does
            not follow the contract, or when the shards hold no clips.
    """
    files = list_shards(source)
    shapes, names, clips = None, {}, []
    for path in files:
        found = 0
        try:
            for position, serialized in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
                found += 1
                try:
                    info = describe_record(serialized)
                except Exception as error:  # noqa: BLE001 - any decode failure is a contract breach
                    raise UserError(
                        f"{path}: record {position} does not follow the mater-tf data contract "
                        f"({error}); re-create it with mater-tf prepare"
                    ) from None
                if info["non_finite"]:
                    raise UserError(
                        f"{path}: clip '{info['clip_id']}' (record {position}) holds NaN or Inf values in "
                        f"{', '.join(info['non_finite'])}; re-create it with mater-tf prepare or drop that clip"
                    )
                shape = (info["num_windows"], info["audio_dim"], info["face_dim"], info["log_mel_frames"])
                if shapes is None:
                    shapes = shape
                elif shape != shapes:
                    raise UserError(
                        f"{path}: record {position} has (windows, D_a, D_v, log-mel frames)={shape} but earlier "
                        f"records have {shapes}; keep one windowing and embedder per dataset"
                    )
                if names.setdefault(info["label"], info["label_name"]) != info["label_name"]:
                    raise UserError(
                        f"{path}: label {info['label']} is named '{info['label_name']}' here and "
                        f"'{names[info['label']]}' elsewhere; the label set must be fixed"
                    )
                clips.append((info["clip_id"], info["subject"], info["label"], info))
        except tf.errors.OpError as error:
            raise UserError(
                f"{path}: not a readable TFRecord file ({error.message.splitlines()[0]}); "
                "remove it or re-create it with mater-tf prepare"
            ) from None
        if not found and os.path.getsize(path) > 0:
            # TensorFlow reads a file shorter than one record header as empty.
            raise UserError(
                f"{path}: not a readable TFRecord file (truncated, {os.path.getsize(path)} bytes and "
                "no record); remove it or re-create it with mater-tf prepare"
            )
    if not clips:
        raise UserError(f"the shards at '{source}' hold no clips: the dataset is empty")
    label_names = _label_set(files, names)
    return RecordIndex(
        files=tuple(files),
        num_windows=shapes[0],
        audio_dim=shapes[1],
        face_dim=shapes[2],
        label_names=label_names,
        corpus=clips[0][3]["corpus"],
        window_seconds=clips[0][3]["window_seconds"],
        audio_embedder=clips[0][3]["audio_embedder"],
        face_embedder=clips[0][3]["face_embedder"],
        log_mel_frames=shapes[3],
        clip_ids=tuple(c[0] for c in clips),
        subjects=tuple(c[1] for c in clips),
        labels=tuple(c[2] for c in clips),
        # Only when every record has them (folders prepared before and after they existed mix;
        # a model that reads them refuses such records in make_dataset).
        voice_descriptors=all(clip[3]["voice_descriptors"] for clip in clips),
        modalities_present=tuple(c[3]["modalities_present"] for c in clips),
    )


def _label_set(files: Sequence[str], seen: dict) -> tuple:
    """The label names in label order: the prepared label set that the manifests beside the
    shards record (a class with no clip here, the last one included, keeps its place), else
    those of the labels seen, with a placeholder for any gap.

    Raises:
        UserError: the manifests disagree, or a record's label is not in its manifest's set.
    """
    manifests = {}
    for folder in sorted({os.path.dirname(str(f)) or "." for f in files}):
        path = Path(folder) / MANIFEST_FILE
        names = json.loads(path.read_text()).get("label_names") if path.is_file() else None
        if names:
            manifests[path] = tuple(names)
    if len(set(manifests.values())) > 1:
        raise UserError(
            "the records' folders were prepared with different label sets ("
            + "; ".join(f"{path}: {','.join(names)}" for path, names in manifests.items())
            + "); train on folders of one label set"
        )
    if not manifests:
        return tuple(seen.get(label, f"class_{label}") for label in range(max(seen) + 1))
    path, names = next(iter(manifests.items()))
    for label, name in sorted(seen.items()):
        if not 0 <= label < len(names) or names[label] != name:
            raise UserError(
                f"a record's label {label} '{name}' is not label {label} of {path} "
                f"({','.join(names)}); re-create the records with mater-tf prepare"
            )
    return names


def count_clips(index: RecordIndex, subjects: Iterable[str]) -> int:
    """Clips of `subjects` in the records."""
    wanted = set(subjects)
    return sum(subject in wanted for subject in index.subjects)


def count_clips_with(index: RecordIndex, subjects: Iterable[str], modality: str) -> int:
    """Clips of `subjects` with at least one window of `modality`."""
    wanted = set(subjects)
    return sum(
        subject in wanted and modality in present
        for subject, present in zip(index.subjects, index.modalities_present)
    )
