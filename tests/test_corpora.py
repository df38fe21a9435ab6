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
    assert len(clips) == 12
    assert sorted(p.split("/")[-1] for p, _ in skipped) == ["SentenceFilenames.csv", "VideoDemographics.csv"]
    assert all("not a media file" in reason for _, reason in skipped)
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
    assert skipped == [
        (str(tmp_path / "c.wav"), f"{tmp_path / 'clips.csv'}:4: empty subject; give the row its speaker's id")
    ]
    with pytest.raises(UserError, match=r"clips.csv: labels not in --labels joy: line 3 'anger'; correct"):
        list_csv(tmp_path / "clips.csv", label_names=["joy"])
    clips, _ = list_csv(tmp_path / "clips.csv", label_names=["joy", "anger", "calm"])
    assert [(c.clip_id, c.label) for c in clips] == [("a", 0), ("b", 1)]
    assert label_names("csv", clips, ["joy", "anger", "calm"]) == ("joy", "anger", "calm")
    (tmp_path / "bad.csv").write_text("file,label\na.wav,joy\n")
    with pytest.raises(UserError, match="missing column.*path.*subject"):
        list_csv(tmp_path / "bad.csv")


def test_csv_label_indices_have_no_gaps_when_a_row_is_passed_over(tmp_path):
    touch(tmp_path, "a.wav", "b.wav")
    (tmp_path / "clips.csv").write_text("path,label,subject\na.wav,anger,\nb.wav,joy,p1\n")
    clips, _ = list_csv(tmp_path / "clips.csv")
    assert [(c.label, c.label_name) for c in clips] == [(0, "joy")]
    assert label_names("csv", clips) == ("joy",)


def test_csv_from_excel_with_a_byte_order_mark(tmp_path):
    touch(tmp_path, "a.wav")
    (tmp_path / "clips.csv").write_bytes("path,label,subject\r\na.wav,joy,p1\r\n".encode("utf-8-sig"))
    clips, skipped = list_csv(tmp_path / "clips.csv")
    assert [(c.clip_id, c.label_name, c.subject) for c in clips] == [("a", "joy", "p1")] and not skipped


def test_csv_that_is_not_utf8_names_the_line(tmp_path):
    (tmp_path / "clips.csv").write_bytes(
        "path,label,subject\na.wav,joy,p1\nb.wav,joy,Jos\u00e9\n".encode("latin-1")
    )
    with pytest.raises(UserError, match=r"clips.csv:3: not UTF-8 text \(byte 0xe9\); save the CSV as UTF-8"):
        list_csv(tmp_path / "clips.csv")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])  # with a byte order mark (Excel) and without
def test_csv_in_utf16_gets_the_utf16_hint_not_the_latin1_one(tmp_path, encoding):
    (tmp_path / "clips.csv").write_bytes("path,label,subject\na.wav,joy,p1\n".encode(encoding))
    with pytest.raises(UserError) as caught:
        list_csv(tmp_path / "clips.csv")
    assert "clips.csv: UTF-16 text, not UTF-8" in str(caught.value)
    assert "iconv -f utf-16 -t utf-8 clips.csv" in str(caught.value) and "latin1" not in str(caught.value)


def test_csv_files_with_the_same_name_get_distinct_ids(tmp_path):
    touch(tmp_path, "s1/take.wav", "s2/take.wav", "s2/other.wav")
    (tmp_path / "clips.csv").write_text(
        "path,label,subject\ns1/take.wav,joy,p1\ns2/take.wav,joy,p2\ns2/other.wav,sad,p2\n./s1/take.wav,sad,p1\n"
    )
    clips, skipped = list_csv(tmp_path / "clips.csv")
    assert sorted(c.clip_id for c in clips) == ["other", "s1/take", "s2/take"]
    assert skipped == [
        (
            str(tmp_path / "s1" / "take.wav"),
            f"{tmp_path / 'clips.csv'}:5: the same file as line 2; listed once",
        )
    ]


def test_linked_actor_folders_are_followed_and_nothing_is_dropped_silently(tmp_path):
    store, root = tmp_path / "store", tmp_path / "corpus"
    touch(store, "Actor_01/03-01-05-02-01-01-01.wav", "Actor_02/03-01-04-01-01-01-02.wav")
    touch(root, "Actor_03/03-01-03-01-01-01-03.wav", "Actor_03/notes.txt")
    (root / "Actor_01").symlink_to(store / "Actor_01", target_is_directory=True)
    (root / "Actor_02").symlink_to(store / "Actor_02", target_is_directory=True)
    (root / "Actor_03" / "loop").symlink_to(root, target_is_directory=True)  # a cycle is listed once
    (root / "Actor_03" / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    clips, skipped = list_ravdess(root)
    assert [c.subject for c in clips] == ["03", "02", "01"]  # sorted by id (the emotion code comes first)
    assert all(c.path.startswith(str(root)) for c in clips)
    reasons = {path.split("/")[-1]: reason for path, reason in skipped}
    assert reasons == {
        "notes.txt": reasons["notes.txt"],
        "loop": f"a link to a folder already listed ({root})",
        "gone.wav": "broken symbolic link (its target does not exist)",
    }
    assert reasons["notes.txt"].startswith("not a media file (FFmpeg cannot open it: not readable media")
    # Every file seen is a clip or passed over with its reason.
    assert len(clips) + len(skipped) == 6
    only_links = tmp_path / "only_links"
    only_links.mkdir()
    (only_links / "Actor_01").symlink_to(store / "Actor_01", target_is_directory=True)
    assert len(list_ravdess(only_links)[0]) == 1


def test_the_same_file_through_a_link_is_one_clip(tmp_path):
    touch(tmp_path, "a/1003_IEO_HAP_HI.flv")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "1003_IEO_HAP_HI.flv").symlink_to(tmp_path / "a" / "1003_IEO_HAP_HI.flv")
    clips, skipped = list_cremad(tmp_path)
    assert len(clips) == 1
    assert "the same file as" in skipped[0][1] and "listed once" in skipped[0][1]


def test_nothing_found(tmp_path):
    with pytest.raises(UserError, match="no ravdess clips"):
        list_corpus("ravdess", tmp_path)
    touch(tmp_path, "a.txt", "b.txt", "01-01.wav")
    with pytest.raises(UserError, match=r"3 files passed over: 2 not a media file; 1 name is not a RAVDESS"):
        list_corpus("ravdess", tmp_path)
    with pytest.raises(UserError, match="--labels is for --corpus csv"):
        list_corpus("ravdess", tmp_path, ["a"])
    with pytest.raises(UserError, match="is not a folder"):
        list_corpus("cremad", tmp_path / "missing")


@pytest.mark.slow
def test_a_folder_is_listed_by_what_ffmpeg_finds_in_its_files(phone_recording, shared_dir, tmp_path):
    import shutil

    from mater_tf.corpora import list_folder_or_csv

    phone_recording(tmp_path / "1003_IEO_HAP_HI.m4a")
    shutil.copyfile(
        shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3", tmp_path / "1004_IEO_SAD_HI.dat"
    )
    (tmp_path / "1005_IEO_SAD_HI.txt").write_text("a clip's name, no clip in it")
    (tmp_path / "notes.py").write_text("print('hello')")
    clips, skipped = list_cremad(tmp_path)
    assert [c.path.split("/")[-1] for c in clips] == ["1003_IEO_HAP_HI.m4a", "1004_IEO_SAD_HI.dat"]
    reasons = {path.split("/")[-1]: reason for path, reason in skipped}
    assert reasons["1005_IEO_SAD_HI.txt"].startswith("not a media file (FFmpeg cannot open it")
    assert reasons["notes.py"] == "not a media file (suffix '.py' is no format FFmpeg reads; not opened)"
    (tmp_path / "cremad").mkdir()
    phone_recording(tmp_path / "cremad" / "voice memo.m4a")  # any name: its suffix is FFmpeg's
    found, _, kind = list_folder_or_csv(tmp_path / "cremad")
    assert kind == "files" and [c.clip_id for c in found] == ["voice memo"]


def test_a_folder_opens_only_files_that_may_be_clips(tmp_path, monkeypatch):
    """A folder that links to /usr: FFmpeg opens no file whose name is neither a clip code nor a
    suffix FFmpeg reads (122,589 such files cost minutes, 5 ms each)."""
    opened = []
    from mater_tf.media import Streams

    monkeypatch.setattr(
        "mater_tf.corpora.media_files.probe", lambda path: opened.append(path.name) or Streams(False, False)
    )
    touch(
        tmp_path, "lib/libx.so.3", "lib/tool.py", "include/x.h", "bin/tool", "1003_IEO_HAP_HI.bin", "song.m4a"
    )
    list_cremad(tmp_path)
    assert sorted(opened) == ["1003_IEO_HAP_HI.bin", "song.m4a"]
