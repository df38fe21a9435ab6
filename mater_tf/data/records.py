"""Reading and writing record shards: atomic writer, corpus index, input pipeline."""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import tensorflow as tf

from mater_tf.data import schema
from mater_tf.errors import UserError

log = logging.getLogger(__name__)

SHARD_SUFFIX = ".tfrecord"
MANIFEST_FILE = "manifest.json"  # written last by mater-tf prepare and the synthetic corpus
PLAN_FILE = "plan.json"  # written first by mater-tf prepare
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


def write_atomically(path: str | Path, write) -> None:
    """Calls `write(tmp_path)` then renames, so `path` is whole or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def make_out_dir(folder: str | Path, option: str = "--out") -> None:
    """Makes `folder` (and its parents) and checks a file can be written in it.

    Raises:
        UserError: naming `option` and the folder: a file is in the way, or it cannot be written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise UserError(f"{option} {folder}: a file, not a folder, is there; choose a folder") from None
    except NotADirectoryError:
        raise UserError(
            f"{option} {folder}: part of that path is a file, not a folder; choose a folder"
        ) from None
    except OSError as error:
        raise UserError(
            f"{option} {folder}: cannot write there ({error.strerror}); choose a folder you can write to"
        ) from None


def write_json(path: str | Path, payload) -> None:
    """Writes JSON atomically (indented, keys kept in order)."""
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2) + "\n"))


def write_shard(path: str | Path, clips: Iterable[schema.ClipRecord]) -> int:
    """Writes one shard atomically; returns the number of clips written."""
    count = 0

    def write(tmp):
        nonlocal count
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for clip in clips:
                writer.write(schema.to_sequence_example(clip).SerializeToString())
                count += 1

    write_atomically(path, write)
    return count


def shard_name(prefix: str, index: int, total: int) -> str:
    return f"{prefix}-{index:05d}-of-{total:05d}{SHARD_SUFFIX}"


def write_shards(
    clips: Sequence[schema.ClipRecord], out_dir: str | Path, prefix: str = "clips", clips_per_shard: int = 256
) -> list[Path]:
    """Writes clips into sharded TFRecords, each shard atomically."""
    total = max(1, -(-len(clips) // clips_per_shard))
    paths = []
    for index in range(total):
        path = Path(out_dir) / shard_name(prefix, index, total)
        write_shard(path, clips[index * clips_per_shard : (index + 1) * clips_per_shard])
        paths.append(path)
    return paths


def list_shards(source: str | Path) -> list[str]:
    """The shard files of a folder (every *.tfrecord*) or a glob, sorted."""
    source = str(source)
    if os.path.isdir(source):
        files = glob.glob(os.path.join(source, f"*{SHARD_SUFFIX}*"))
    else:
        files = glob.glob(source)
    # Not the temporary files of a shard being written, nor prepare's per-shard sidecars.
    files = sorted(f for f in files if os.path.isfile(f) and not f.endswith((".tmp", ".json")))
    if not files:
        raise UserError(
            f"no TFRecord shards at '{source}': point data.source at a folder of *{SHARD_SUFFIX} "
            "files made by mater-tf prepare, or at a glob"
        )
    return files


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
                    info = schema.describe_record(serialized)
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


def check_complete(source: str | Path) -> None:
    """Refuses records that `mater-tf prepare` has not finished writing.

    A folder (or a glob's folders) must hold the `manifest.json` that prepare
    (and the synthetic corpus) write last, and every shard it lists.

    Raises:
        UserError: naming the folder and the fix.
    """
    source = str(source)
    folders = {source} if os.path.isdir(source) else {os.path.dirname(f) or "." for f in list_shards(source)}
    for folder in sorted(folders):
        manifest = Path(folder) / MANIFEST_FILE
        if not manifest.is_file():
            started = (Path(folder) / PLAN_FILE).is_file()
            found = len(glob.glob(os.path.join(folder, f"*{SHARD_SUFFIX}")))
            raise UserError(
                f"{folder}: "
                + (
                    f"mater-tf prepare has not finished there ({found} shards written, no {MANIFEST_FILE}); "
                    "run the same mater-tf prepare command again to finish it"
                    if started
                    else f"no {MANIFEST_FILE}, so these are not finished mater-tf prepare records; "
                    "re-create them with mater-tf prepare"
                )
            )
        listed = json.loads(manifest.read_text()).get("shards", [])
        missing = [name for name in listed if not (Path(folder) / name).is_file()]
        if missing:
            raise UserError(
                f"{folder}: {MANIFEST_FILE} lists {len(missing)} shard(s) that are not there "
                f"({', '.join(missing[:3])}); copy the whole folder or re-create it with mater-tf prepare"
            )


def model_targets(label: tf.Tensor, modalities: Sequence[str], ensemble: bool = False) -> dict:
    """The same label for the fused and every per-modality output (and, for an ensemble,
    for every member's: `schema.member_key`)."""
    targets = {"logits": label}
    for modality in modalities:
        targets[f"{modality}_logits"] = label
    if ensemble:
        targets.update({schema.member_key(key): label for key in list(targets)})
    return targets


def model_inputs(
    features: dict, modalities: Sequence[str], audio_log_mel: bool = False, voice_descriptors: bool = False
) -> dict:
    return {name: features[name] for name in schema.input_names(modalities, audio_log_mel, voice_descriptors)}


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


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch: a pure function of the run's seed and the epoch."""
    return (seed * 1_000_003 + epoch) % (2**31 - 1) + 1


def mixup(features: dict, alpha: float, num_classes: int, seed) -> dict:
    """Mixup of one batch (Zhang et al., ICLR 2018): clip i is mixed with clip n-1-i of the
    (shuffled) batch with weight lam_i ~ Beta(alpha, alpha), drawn from the stateless `seed`.

    Window by window, where both clips have the window its inputs (embeddings, log-mel
    patches) are lam * own + (1 - lam) * partner; where only one has it, that one's window is
    taken whole (never a window scaled towards padding); a window counts as present where it
    is present in either clip. `features["target"]` becomes lam * own + (1 - lam) * partner
    of the one-hot labels. Every other entry is the clip's own.
    """
    label = tf.one_hot(features["label"], num_classes)
    size = tf.shape(label)[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    first = tf.random.stateless_gamma([size], seeds[0], alpha=alpha)
    second = tf.random.stateless_gamma([size], seeds[1], alpha=alpha)
    lam = first / tf.maximum(first + second, 1e-12)
    mixed = dict(features)

    def window_weights(modality):
        """[batch, T]: the own clip's share of each window."""
        own = features[f"{modality}_valid"] > 0
        partner = tf.reverse(own, axis=[0])
        return tf.where(own & partner, lam[:, None], tf.cast(own, lam.dtype))

    for name, value in features.items():
        if name.endswith("_valid"):
            mixed[name] = tf.maximum(value, tf.reverse(value, axis=[0]))
        elif name.endswith("_embedding") or name in (schema.LOG_MEL_INPUT, schema.VOICE_DESCRIPTORS_INPUT):
            weight = window_weights(name.split("_")[0])
            weight = tf.reshape(weight, tf.concat([tf.shape(weight), [1] * (len(value.shape) - 2)], 0))
            mixed[name] = weight * value + (1.0 - weight) * tf.reverse(value, axis=[0])
    mixed["target"] = lam[:, None] * label + (1.0 - lam[:, None]) * tf.reverse(label, axis=[0])
    return mixed


def make_dataset(
    index: RecordIndex,
    subjects: Iterable[str],
    modalities: Sequence[str],
    batch_size: int,
    training: bool,
    seed: int = 0,
    with_context: bool = False,
    audio_log_mel: bool = False,
    voice_descriptors: bool = False,
    epochs: tuple[int, int] = (0, 1),
    mixup_alpha: float = 0.0,
    ensemble: bool = False,
    one_hot: bool = False,
) -> tf.data.Dataset:
    """The input pipeline of one split: the clips of `subjects`, batched.

    Order: shards -> interleave -> parse -> keep the split's subjects ->
    cache; then, when training, for every epoch e of `epochs` [first, last):
    a shuffle of the whole split (across subjects and shards) seeded by
    (`seed`, e) -> batch; then prefetch. Epoch e's order is the same whether
    a run gets there uninterrupted or resumes at e, so a resumed run sees the
    batches the uninterrupted one saw. With `mixup_alpha` > 0 each training batch
    is mixed (`mixup`, seeded by (`seed`, e, batch)) and the targets of every
    split are one-hot rows (mixed ones in training); `one_hot` makes them one-hot
    rows without mixing (for label smoothing). The training dataset yields
    `last - first` epochs of `ceil(clips / batch_size)` batches (pass that
    as Keras' `steps_per_epoch`). With `ensemble`, the targets also name every
    output of the ensemble's members (`model_targets`).

    Yields:
        (inputs, targets) for Keras, or (inputs, targets, context) when
        `with_context` (label, subject, clip id, and `{modality}_present`:
        whether the clip has any window of that modality) for evaluation.
    """
    subjects = sorted(set(subjects))
    if not subjects:
        raise UserError("a data split has no subjects; use fewer folds or more subjects")
    if audio_log_mel and not index.log_mel_frames:
        raise UserError(
            "the audio front end needs the records' log-mel patches, which these records do not hold; "
            "prepare them with mater-tf prepare --keep-log-mel"
        )
    if voice_descriptors and not (audio_log_mel and index.voice_descriptors):
        raise UserError(
            "model.utterance_functionals needs the records' voice descriptors, which these records do not "
            "hold (prepared before mater-tf wrote them); prepare them again with mater-tf prepare --keep-log-mel"
        )
    wanted = tf.constant(subjects)
    log_mel_frames = index.log_mel_frames if audio_log_mel else 0
    dataset = tf.data.Dataset.from_tensor_slices(list(index.files)).interleave(
        tf.data.TFRecordDataset, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    dataset = dataset.map(
        lambda s: schema.parse_serialized(
            s, index.audio_dim, index.face_dim, log_mel_frames, voice_descriptors
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    dataset = dataset.filter(lambda f: tf.reduce_any(tf.equal(f["subject"], wanted))).cache()
    if training:
        clips = max(1, count_clips(index, subjects))
        # One dataset per epoch with a Python seed (a tensor seed breaks tf.data's seed logic
        # once a global seed is set); they all read the same in-memory cache.
        per_epoch = [
            dataset.shuffle(clips, seed=epoch_seed(seed, epoch), reshuffle_each_iteration=False).batch(
                batch_size
            )
            for epoch in range(*epochs)
        ]
        if mixup_alpha > 0:
            per_epoch = [
                batches.enumerate().map(
                    lambda step, features, epoch=epoch: mixup(
                        features,
                        mixup_alpha,
                        index.num_classes,
                        tf.stack([tf.constant(epoch_seed(seed, epoch), tf.int64), step]),
                    ),
                    num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True,
                )
                for epoch, batches in zip(range(*epochs), per_epoch)
            ]
        dataset = functools.reduce(tf.data.Dataset.concatenate, per_epoch)
    else:
        dataset = dataset.batch(batch_size)

    def split(features):
        inputs = model_inputs(features, modalities, audio_log_mel, voice_descriptors)
        if mixup_alpha > 0 or one_hot:
            target = features.get("target", tf.one_hot(features["label"], index.num_classes))
        else:
            target = features["label"]
        targets = model_targets(target, modalities, ensemble)
        if with_context:
            context = {k: features[k] for k in ("label", "subject", "clip_id")}
            for modality in modalities:
                context[f"{modality}_present"] = tf.reduce_max(features[f"{modality}_valid"], axis=-1) > 0
            return inputs, targets, context
        return inputs, targets

    return dataset.map(split, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
