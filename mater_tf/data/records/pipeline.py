"""The input pipeline: one split's clips from the shards to Keras' (inputs, targets) batches."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import tensorflow as tf

from mater_tf.data.records.batch_mixup import mixup
from mater_tf.data.records.index import RecordIndex, count_clips
from mater_tf.data.schema import input_names, member_key, parse_serialized
from mater_tf.errors import UserError


def model_targets(label: tf.Tensor, modalities: Sequence[str], ensemble: bool = False) -> dict:
    """The same label for the fused and every per-modality output (and, for an ensemble,
    for every member's: `member_key`)."""
    targets = {"logits": label}
    for modality in modalities:
        targets[f"{modality}_logits"] = label
    if ensemble:
        targets.update({member_key(key): label for key in list(targets)})
    return targets


def model_inputs(
    features: dict, modalities: Sequence[str], audio_log_mel: bool = False, voice_descriptors: bool = False
) -> dict:
    return {name: features[name] for name in input_names(modalities, audio_log_mel, voice_descriptors)}


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch: a pure function of the run's seed and the epoch."""
    return (seed * 1_000_003 + epoch) % (2**31 - 1) + 1


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
        lambda s: parse_serialized(s, index.audio_dim, index.face_dim, log_mel_frames, voice_descriptors),
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
