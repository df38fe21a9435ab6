"""Corpus readers on the real sample files and on names laid out like the releases."""

import pytest

from mater_tf.corpora import (
    CREMAD_LABELS,
    RAVDESS_LABELS,
    label_names,
    list_corpus,
    list_cremad,
    list_csv,
    list_ravdess,
)
from mater_tf.errors import UserError


def touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_ravdess_sample(shared_dir):
    clips, skipped = list_ravdess(shared_dir / "data" / "RAVDESS")
    assert len(clips) == 17 and not skipped
    by_id = {c.clip_id: c for c in clips}
    stereo = by_id["03-01-02-01-01-02-01"]
    assert (stereo.label_name, stereo.label, stereo.subject) == ("calm", 1, "01")
    assert by_id["03-01-08-01-01-01-02"].label_name == "surprised"
    assert {c.subject for c in clips} == {"01", "02"}
    assert label_names("ravdess", clips) == RAVDESS_LABELS


def test_ravdess_layouts_and_what_is_passed_over(tmp_path):
    touch(
        tmp_path,
        "Video_Speech_Actor_03/Actor_03/01-01-05-02-01-01-03.mp4",
        "Video_Speech_Actor_03/Actor_03/02-01-05-02-01-01-03.mp4",  # video only
        "Audio_Speech_Actors_01-24/Actor_03/03-01-05-02-01-01-03.wav",  # same clip, audio only
        "Audio_Speech_Actors_01-24/Actor_03/03-01-04-01-01-01-03.wav",
        "Audio_Song_Actors_01-24/Actor_03/03-02-04-01-01-01-03.wav",  # song
        "Audio_Speech_Actors_01-24/Actor_03/03-01-09-01-01-01-03.wav",  # no emotion 09
        "Audio_Speech_Actors_01-24/Actor_03/notes.wav",
    )
    clips, skipped = list_ravdess(tmp_path)
    assert [(c.path.split("/")[-1], c.label_name) for c in clips] == [
        ("03-01-04-01-01-01-03.wav", "sad"),
        ("01-01-05-02-01-01-03.mp4", "angry"),
    ]
    reasons = {path.split("/")[-1]: reason for path, reason in skipped}
    assert "video-only" in reasons["02-01-05-02-01-01-03.mp4"]
    assert "audio-visual file is used" in reasons["03-01-05-02-01-01-03.wav"]
    assert "song" in reasons["03-02-04-01-01-01-03.wav"]
    assert "unknown RAVDESS emotion code 09" in reasons["03-01-09-01-01-01-03.wav"]
    assert "not a RAVDESS" in reasons["notes.wav"]


def test_cremad_sample_and_bad_names(shared_dir, tmp_path):
    clips, skipped = list_cremad(shared_dir / "data" / "CREMA-D")
    assert len(clips) == 12 and not skipped
    assert {c.subject for c in clips} == {"1001", "1002"}
    assert {c.label_name for c in clips} == set(CREMAD_LABELS)
    assert all(c.path.endswith(".flv") for c in clips if c.subject == "1001")
    touch(
        tmp_path,
        "AudioWAV/1003_IEO_XYZ_HI.wav",
        "AudioWAV/1003_IEO_HAP_HI.wav",
        "VideoFlash/1003_IEO_HAP_HI.flv",
    )
    clips, skipped = list_cremad(tmp_path)
    assert [c.path.split("/")[-1] for c in clips] == ["1003_IEO_HAP_HI.flv"]
    assert any("unknown CREMA-D emotion 'XYZ'" in reason for _, reason in skipped)


def test_csv_corpus(tmp_path):
    touch(tmp_path, "a.wav", "b.mp4")
    (tmp_path / "clips.csv").write_text("path,label,subject\na.wav,joy,p1\nb.mp4,anger,p2\nc.wav,joy,\n")
    clips, skipped = list_csv(tmp_path / "clips.csv")
    assert [(c.clip_id, c.label, c.label_name, c.subject) for c in clips] == [
        ("a", 1, "joy", "p1"),
        ("b", 0, "anger", "p2"),
    ]
    assert clips[0].path == str(tmp_path / "a.wav")
    assert "empty subject" in skipped[0][1]
    clips, skipped = list_csv(tmp_path / "clips.csv", label_names=["joy"])
    assert "label 'anger' is not one of joy" in skipped[0][1]
    (tmp_path / "bad.csv").write_text("file,label\na.wav,joy\n")
    with pytest.raises(UserError, match="missing column.*path.*subject"):
        list_csv(tmp_path / "bad.csv")


def test_nothing_found(tmp_path):
    with pytest.raises(UserError, match="no ravdess clips"):
        list_corpus("ravdess", tmp_path)
    with pytest.raises(UserError, match="is not a folder"):
        list_corpus("cremad", tmp_path / "missing")
