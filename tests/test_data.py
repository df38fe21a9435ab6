"""Schema, record writer/reader, input pipeline, folds and the synthetic corpus."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from mater_tf.config import SyntheticConfig
from mater_tf.data import folds, records, schema, synthetic
from mater_tf.errors import UserError

SMALL = SyntheticConfig(
    num_subjects=5,
    clips_per_subject=6,
    num_windows=4,
    min_valid_windows=2,
    evidence_windows=1,
    audio_dim=5,
    face_dim=3,
)


def make_clip(clip_id="c1", subject="s1", label=2, windows=3, audio_dim=5, face_dim=3):
    rng = np.random.default_rng(7)
    return schema.ClipRecord(
        clip_id=clip_id,
        corpus="test",
        subject=subject,
        label=label,
        label_name=f"name{label}",
        duration=1.25,
        window_seconds=0.5,
        audio_embedding=rng.normal(size=(windows, audio_dim)).astype(np.float32),
        face_embedding=rng.normal(size=(windows, face_dim)).astype(np.float32),
        audio_valid=np.array([1] * (windows - 1) + [0]),
        face_valid=np.array([0] + [1] * (windows - 1)),
        face_frames_found=np.array([0] + [11] * (windows - 1)),
        audio_embedder="vggish:abc",
        face_embedder="vggm:def",
    )


def test_record_round_trip_eager_and_in_dataset_map(tmp_path):
    clip = make_clip()
    serialized = schema.to_sequence_example(clip).SerializeToString()
    eager = schema.parse_serialized(tf.constant(serialized), 5, 3)
    mapped = next(
        iter(tf.data.Dataset.from_tensors(serialized).map(lambda s: schema.parse_serialized(s, 5, 3)))
    )
    for parsed in (eager, mapped):
        np.testing.assert_allclose(parsed["audio_embedding"], clip.audio_embedding)
        np.testing.assert_allclose(parsed["face_embedding"], clip.face_embedding)
        np.testing.assert_array_equal(parsed["audio_valid"], [1, 1, 0])
        np.testing.assert_array_equal(parsed["face_valid"], [0, 1, 1])
        assert int(parsed["label"]) == 2
        assert parsed["subject"].numpy() == b"s1"
    info = schema.describe_record(serialized)
    assert (info["num_windows"], info["audio_dim"], info["face_dim"]) == (3, 5, 3)
    assert info["audio_embedder"] == "vggish:abc" and info["window_seconds"] == 0.5


def test_contract_breaches_are_named(tmp_path):
    example = schema.to_sequence_example(make_clip())
    del example.context.feature["clip/subject"]
    with pytest.raises(ValueError, match="clip/subject"):
        schema.describe_record(example.SerializeToString())
    example = schema.to_sequence_example(make_clip())
    example.context.feature["schema/version"].int64_list.value[0] = 99
    with pytest.raises(ValueError, match="schema/version 99"):
        schema.describe_record(example.SerializeToString())


def test_shards_are_written_atomically_and_indexed(tmp_path):
    clips = [make_clip(f"c{i}", f"s{i % 3}", label=i % 4) for i in range(7)]
    paths = records.write_shards(clips, tmp_path, clips_per_shard=3)
    assert [p.name for p in paths] == [records.shard_name("clips", i, 3) for i in range(3)]
    assert not list(tmp_path.glob("*.tmp"))
    index = records.index_records(tmp_path)
    assert index.clip_ids == tuple(f"c{i}" for i in range(7))
    assert index.subject_ids == ["s0", "s1", "s2"]
    assert index.label_names == ("name0", "name1", "name2", "name3")
    assert (index.num_windows, index.audio_dim, index.face_dim) == (3, 5, 3)


def test_the_prepared_label_set_holds_a_class_no_clip_has(tmp_path):
    # Labels 0..2 of a 4-class corpus: the last class has no clip in these records.
    clips = [make_clip(f"c{i}", f"s{i % 3}", label=i % 3) for i in range(6)]
    records.write_shards(clips, tmp_path)
    names = ["name0", "name1", "name2", "name3"]
    (tmp_path / records.MANIFEST_FILE).write_text(json.dumps({"label_names": names}))
    assert records.index_records(tmp_path).label_names == tuple(names)
    (tmp_path / records.MANIFEST_FILE).write_text(json.dumps({"label_names": ["name0", "other"]}))
    with pytest.raises(UserError, match=r"label 1 'name1' is not label 1 of .*name0,other"):
        records.index_records(tmp_path)


def test_the_index_knows_which_clips_have_each_modality(tmp_path):
    no_face = make_clip("c2", "s2")
    no_face = dataclasses.replace(
        no_face, face_valid=np.zeros(3, np.int64), face_frames_found=np.zeros(3, np.int64)
    )
    records.write_shards([make_clip("c1", "s1"), no_face], tmp_path)
    index = records.index_records(tmp_path)
    assert records.count_clips_with(index, ["s1", "s2"], "audio") == 2
    assert records.count_clips_with(index, ["s1", "s2"], "face") == 1
    assert records.count_clips_with(index, ["s2"], "face") == 0


def test_numbered_subjects_sort_as_numbers(tmp_path):
    # A CSV corpus's unpadded speaker numbers: consecutive folds are 1-2, 3-4, ..., not 1-10, 11-12.
    subjects = [str(i) for i in range(1, 13)]
    fold_list = folds.subject_disjoint_folds(subjects[::-1], 6)
    assert fold_list == [["1", "2"], ["3", "4"], ["5", "6"], ["7", "8"], ["9", "10"], ["11", "12"]]
    assert folds.subject_disjoint_folds(["s10", "s2", "s1"], 3) == [["s1"], ["s2"], ["s10"]]
    records.write_shards([make_clip(f"c{s}", s) for s in ("10", "2", "1")], tmp_path)
    assert records.index_records(tmp_path).subject_ids == ["1", "2", "10"]


def test_a_failed_write_leaves_no_shard(tmp_path):
    def broken():
        yield make_clip()
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        records.write_shard(tmp_path / "x.tfrecord", broken())
    assert not (tmp_path / "x.tfrecord").exists()
    assert [p.name for p in tmp_path.iterdir()] == [
        "x.tfrecord.tmp"
    ]  # only the temp file, which readers skip
    with pytest.raises(UserError, match="no TFRecord shards"):
        records.list_shards(tmp_path)


def test_bad_record_files_are_named(tmp_path):
    records.write_shards([make_clip()], tmp_path)
    (tmp_path / "zz.tfrecord").write_bytes(b"this is not a tfrecord at all")
    with pytest.raises(UserError, match=r"zz\.tfrecord: not a readable TFRecord"):
        records.index_records(tmp_path)
    (tmp_path / "zz.tfrecord").unlink()
    with tf.io.TFRecordWriter(str(tmp_path / "yy.tfrecord")) as writer:
        writer.write(tf.train.Example().SerializeToString())
    with pytest.raises(UserError, match=r"yy\.tfrecord: record 0 does not follow the mater-tf data contract"):
        records.index_records(tmp_path)
    (tmp_path / "yy.tfrecord").unlink()
    records.write_shard(tmp_path / "ww.tfrecord", [make_clip(audio_dim=7)])
    with pytest.raises(UserError, match="keep one windowing and embedder"):
        records.index_records(tmp_path)


def test_empty_dataset_and_missing_folder(tmp_path):
    records.write_shard(tmp_path / "empty.tfrecord", [])
    with pytest.raises(UserError, match="hold no clips"):
        records.index_records(tmp_path)
    with pytest.raises(UserError, match="no TFRecord shards"):
        records.index_records(tmp_path / "missing")


def test_input_pipeline_keeps_only_the_split_subjects(tmp_path):
    synthetic.write_corpus(SMALL, tmp_path)
    index = records.index_records(tmp_path)
    dataset = records.make_dataset(
        index, ["s001", "s003"], ["audio", "face"], 4, training=True, with_context=True
    )
    subjects, count = set(), 0
    for inputs, targets, context in dataset:
        assert set(inputs) == {"audio_embedding", "audio_valid", "face_embedding", "face_valid"}
        assert set(targets) == {"logits", "audio_logits", "face_logits"}
        np.testing.assert_array_equal(targets["logits"], context["label"])
        subjects |= {s.decode() for s in context["subject"].numpy()}
        count += len(context["label"])
    assert subjects == {"s001", "s003"}
    assert count == 2 * SMALL.clips_per_subject
    audio_only = records.make_dataset(index, ["s000"], ["audio"], 4, training=False)
    inputs, targets = next(iter(audio_only))
    assert set(inputs) == {"audio_embedding", "audio_valid"} and set(targets) == {"logits", "audio_logits"}


def _clip_order(index, seed, epochs, batch_size=5):
    dataset = records.make_dataset(
        index, index.subject_ids, ["audio"], batch_size, True, seed=seed, with_context=True, epochs=epochs
    )
    return [c.decode() for _, _, ctx in dataset for c in ctx["clip_id"].numpy()]


def test_each_epoch_reshuffles_the_whole_split_and_a_resumed_epoch_sees_the_same_order(tmp_path):
    synthetic.write_corpus(SMALL, tmp_path)
    index = records.index_records(tmp_path)
    clips = len(index.clip_ids)
    three = _clip_order(index, 3, (0, 3))
    assert len(three) == 3 * clips
    epochs = [three[k * clips : (k + 1) * clips] for k in range(3)]
    assert all(sorted(epoch) == sorted(index.clip_ids) for epoch in epochs)  # every clip once per epoch
    assert epochs[0] != epochs[1] != epochs[2]  # reshuffled every epoch
    assert _clip_order(index, 3, (1, 3)) == three[clips:]  # a run resumed at epoch 1 sees epochs 1 and 2
    assert _clip_order(index, 4, (0, 1)) != epochs[0]  # the seed fixes the order
    # Across subjects: the shards hold one subject after another, the first batch mixes them.
    subject_of = dict(zip(index.clip_ids, index.subjects))
    assert len({subject_of[c] for c in epochs[0][:6]}) >= 3


def test_records_without_a_finished_manifest_are_refused(tmp_path):
    synthetic.write_corpus(SMALL, tmp_path / "whole")
    records.check_complete(tmp_path / "whole")  # finished: accepted
    half = tmp_path / "half"
    records.write_shards([make_clip(f"c{i}") for i in range(4)], half, clips_per_shard=2)
    with pytest.raises(UserError, match=r"half: no manifest\.json.*re-create them with mater-tf prepare"):
        records.check_complete(half)
    (half / "plan.json").write_text("{}")  # prepare started there and was interrupted
    with pytest.raises(UserError, match="prepare has not finished there .2 shards written.*run the same"):
        records.check_complete(half)
    (half / "manifest.json").write_text('{"shards": ["clips-00000-of-00002.tfrecord", "gone.tfrecord"]}')
    with pytest.raises(UserError, match="lists 1 shard.*gone.tfrecord"):
        records.check_complete(half)


def test_non_finite_values_are_refused_naming_file_and_clip(tmp_path):
    bad = make_clip("clip_with_nan")
    bad.face_embedding[1, 0] = np.nan
    records.write_shards([make_clip("fine"), bad], tmp_path)
    with pytest.raises(
        UserError, match=r"clips-00000-of-00001.tfrecord: clip 'clip_with_nan' .record 1. holds NaN"
    ):
        records.index_records(tmp_path)
    inf = make_clip("clip_with_inf")
    inf.audio_embedding[0, 2] = np.inf
    records.write_shards([inf], tmp_path / "inf")
    with pytest.raises(UserError, match="'clip_with_inf'.*audio/embedding"):
        records.index_records(tmp_path / "inf")


def test_folds_are_subject_disjoint_complete_and_deterministic():
    subjects = [f"{i:02d}" for i in range(1, 25)]
    fold_list = folds.subject_disjoint_folds(list(reversed(subjects)) + subjects[:5], 12)
    assert fold_list == folds.subject_disjoint_folds(subjects, 12)
    assert fold_list[0] == ["01", "02"]  # RAVDESS: one male (odd) and one female actor per fold
    flat = [s for fold in fold_list for s in fold]
    assert sorted(flat) == subjects and len(flat) == len(set(flat))
    uneven = folds.subject_disjoint_folds([str(i) for i in range(91)], 10)
    assert sorted(len(f) for f in uneven) == [9] * 9 + [10]
    for test_fold in range(12):
        split = folds.split_for_fold(fold_list, test_fold)
        assert not set(split.test) & set(split.train)
        assert not set(split.validation) & (set(split.test) | set(split.train))
        assert sorted(split.train + split.validation + split.test) == subjects


def test_without_validation_every_fold_but_the_test_fold_trains():
    fold_list = folds.subject_disjoint_folds(["a", "b", "c", "d"], 4)
    split = folds.split_for_fold(fold_list, 2, validation=False)
    assert (split.test, split.validation, split.train, split.validation_fold) == (
        ("c",),
        (),
        ("a", "b", "d"),
        -1,
    )
    assert folds.split_for_fold(fold_list[:2], 0, validation=False).train == ("b",)
    with pytest.raises(UserError, match="at least 2 folds"):
        folds.split_for_fold([["a", "b"]], 0, validation=False)


def test_fewer_subjects_than_folds():
    with pytest.raises(UserError, match="3 subjects but cv.num_folds=12"):
        folds.subject_disjoint_folds(["a", "b", "c"], 12)


def test_synthetic_corpus_is_deterministic_and_follows_the_contract(tmp_path):
    first = synthetic.generate_clips(SMALL)
    again = synthetic.generate_clips(SMALL)
    other = synthetic.generate_clips(dataclasses.replace(SMALL, seed=1))
    assert all(np.array_equal(a.audio_embedding, b.audio_embedding) for a, b in zip(first, again))
    assert not np.array_equal(first[0].audio_embedding, other[0].audio_embedding)
    for clip in first:
        present = clip.audio_valid.astype(bool)
        assert present.sum() >= SMALL.min_valid_windows
        np.testing.assert_allclose(np.linalg.norm(clip.audio_embedding[present], axis=1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(clip.audio_embedding[~present], 0.0)
        assert not (clip.face_valid & ~present).any()  # no face past the clip's end
    synthetic.write_corpus(SMALL, tmp_path)
    manifest = (tmp_path / "manifest.json").read_text()
    assert "SYNTHETIC" in manifest
    index = records.index_records(tmp_path)
    assert index.corpus == "synthetic" and len(index.clip_ids) == 30


@pytest.mark.parametrize("valid, evidence", [(8, 2), (6, 2), (7, 3), (2, 1)])
def test_synthetic_classes_4_and_5_differ_only_in_timing(valid, evidence):
    rng = np.random.default_rng(0)
    half = valid // 2
    early = [synthetic._evidence_start(rng, 4, valid, evidence) for _ in range(200)]
    late = [synthetic._evidence_start(rng, 5, valid, evidence) for _ in range(200)]
    other = [synthetic._evidence_start(rng, 0, valid, evidence) for _ in range(200)]
    assert max(early) + evidence <= half and min(early) == 0
    assert min(late) >= half and max(late) + evidence == valid
    assert min(other) == 0 and max(other) == valid - evidence


def _evidence_vector(windows):
    """With a strong signal the two evidence windows are near copies of the prototype."""
    similarity = np.sum(windows[:-1] * windows[1:], axis=1)
    return windows[int(np.argmax(similarity))]


def test_synthetic_modalities_are_each_ambiguous():
    config = dataclasses.replace(
        SMALL, signal_strength=50.0, num_windows=8, min_valid_windows=8, evidence_windows=2
    )
    clips = synthetic.generate_clips(config)
    first = {}
    for clip in clips:
        first.setdefault(clip.label, clip)
    audio = {label: _evidence_vector(clip.audio_embedding) for label, clip in first.items()}
    face = {label: _evidence_vector(clip.face_embedding) for label, clip in first.items()}
    assert audio[4] @ audio[5] > 0.99 and face[4] @ face[5] > 0.99  # timing is all that differs
    assert audio[0] @ audio[1] > 0.99 and face[0] @ face[1] < 0.9  # only the face tells 0 from 1
    assert face[2] @ face[3] > 0.99 and audio[2] @ audio[3] < 0.9  # only the voice tells 2 from 3


def test_a_batch_of_records_parses_at_once_and_pads_shorter_clips_as_absent():
    long, short = make_clip("long", windows=4), make_clip("short", windows=2)
    serialized = [schema.to_sequence_example(c).SerializeToString() for c in (long, short)]
    batch = schema.parse_batch(tf.constant(serialized), 5, 3)
    assert batch["audio_embedding"].shape == (2, 4, 5) and batch["face_embedding"].shape == (2, 4, 3)
    np.testing.assert_allclose(batch["audio_embedding"][0], long.audio_embedding)
    np.testing.assert_allclose(batch["face_embedding"][1, :2], short.face_embedding)
    np.testing.assert_array_equal(batch["audio_valid"], [[1, 1, 1, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(batch["face_valid"], [[0, 1, 1, 1], [0, 1, 0, 0]])


def test_records_of_another_windowing_are_refused_with_both_fixes(tmp_path):
    from mater_tf.config import load_config
    from mater_tf.training.experiment_data import index_for

    path = synthetic.write_corpus(SMALL, tmp_path)
    index = records.index_records(path)
    config = load_config("quickstart", [f"data.num_windows={index.num_windows + 4}"])
    with pytest.raises(UserError) as refused:
        index_for(config, path)
    message = str(refused.value)
    assert f"have {index.num_windows} x" in message and f"--windows {index.num_windows + 4}" in message
    # Only the setting that differs is advised (issue 27, item 14): the window length agrees.
    assert message.endswith(f"--set data.num_windows={index.num_windows}")
    assert "--set data.window_seconds" not in message
    same = load_config("quickstart", [f"data.num_windows={index.num_windows}"])
    assert index_for(same, path).num_windows == index.num_windows
