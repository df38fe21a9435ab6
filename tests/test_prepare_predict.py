"""Per-clip extraction, `mater-tf prepare` end to end (kill and resume), and `mater-tf predict`."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from mater_tf.cli.main import main
from mater_tf.data import records, schema
from mater_tf.data.extraction import ClipExtractor, Windowing
from mater_tf.features.embedders import audio_embedder
from mater_tf.media import MediaError

FER = "fer2013_mini_xception.hdf5"


def write_wav(path, waveform, rate=16000):
    path.write_bytes(tf.audio.encode_wav(np.asarray(waveform, np.float32)[:, None], rate).numpy())


def test_audio_windows_of_a_real_clip(ravdess_speech):
    path = ravdess_speech("03-01-01-01-01-01-01.wav")
    extractor = ClipExtractor(Windowing(8, 0.5), audio_embedder("logmel"))
    extraction = extractor.extract(str(path), "x", subject="01", label=0, label_name="neutral")
    record = extraction.record
    assert record.audio_embedding.shape == (8, 128) and record.face_embedding.shape == (8, 1)
    present = int(np.floor(record.duration / 0.5 + 0.5))  # a window counts when half of it has audio
    assert record.audio_valid.tolist() == [1] * present + [0] * (8 - present)
    np.testing.assert_allclose(np.linalg.norm(record.audio_embedding[:present], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(record.audio_embedding[present:], 0.0)
    assert record.face_valid.sum() == 0 and extraction.face_found_rate is None  # audio-only file


def test_too_short_and_silent_clips(tmp_path):
    extractor = ClipExtractor(Windowing(8, 0.5), audio_embedder("logmel"))
    write_wav(tmp_path / "short.wav", np.sin(np.arange(3200) / 5) * 0.5)
    with pytest.raises(MediaError, match=r"short.wav: 0.20 s long, shorter than one 0.5 s window"):
        extractor.extract(str(tmp_path / "short.wav"), "short")
    write_wav(tmp_path / "silent.wav", np.zeros(32000))
    with pytest.raises(MediaError, match="silent.wav: the audio is silent"):
        extractor.extract(str(tmp_path / "silent.wav"), "silent")


def write_faceless_video(path, waveform):
    """A real voice over blank grey frames: a video with speech and no face."""
    import av

    seconds = len(waveform) / 16000
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for index in range(int(25 * seconds)):
            frame = av.VideoFrame.from_ndarray(
                np.full((120, 160, 3), 90 + index % 20, np.uint8), format="rgb24"
            )
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for start in range(0, len(waveform), 1024):
            frame = av.AudioFrame.from_ndarray(
                np.float32(waveform[None, start : start + 1024]), format="flt", layout="mono"
            )
            frame.sample_rate = 16000
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))


@pytest.fixture
def faceless_video(ravdess_speech, tmp_path):
    """`nobody.mp4`: a real RAVDESS utterance (3.5 s) over frames with no face."""
    from mater_tf.media import decode_audio

    path = tmp_path / "nobody.mp4"
    write_faceless_video(path, decode_audio(ravdess_speech("03-01-01-01-01-01-01.wav")))
    return path


def test_no_face_anywhere_keeps_the_voice(shared_dir, faceless_video):
    from mater_tf.faces import FaceTracker
    from mater_tf.features.embedders import face_embedder

    extractor = ClipExtractor(
        Windowing(4, 0.5),
        audio_embedder("logmel"),
        face_embedder(f"keras:{shared_dir / 'weights' / FER}"),
        FaceTracker(),
    )
    extraction = extractor.extract(str(faceless_video), "nobody")
    record = extraction.record
    assert extraction.face_found_rate == 0.0 and extraction.face_windows == 0
    assert record.face_valid.tolist() == [0, 0, 0, 0] and record.audio_valid.tolist() == [1, 1, 1, 1]
    np.testing.assert_array_equal(record.face_embedding, 0.0)
    np.testing.assert_allclose(np.linalg.norm(record.audio_embedding, axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_prepare_keeps_and_counts_clips_without_a_face(shared_dir, faceless_video, tmp_path, capsys):
    mp3 = shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3"
    (tmp_path / "clips.csv").write_text(f"path,label,subject\n{faceless_video},neutral,s1\n{mp3},anger,s2\n")
    out = tmp_path / "out"
    assert main(prepare_args(shared_dir, out, "csv", tmp_path / "clips.csv")) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_clips"] == 2 and manifest["failed"] == {}
    assert manifest["num_no_face"] == 1 and manifest["no_face_clips"] == ["nobody"]
    assert manifest["clips"]["nobody"]["face_found_rate"] == 0.0
    assert manifest["clips"]["1002_DFA_ANG_XX"]["face_windows"] is None  # audio-only: no face looked for
    assert "1 video clips with no face found" in capsys.readouterr().out
    index = records.index_records(out)
    for serialized in tf.data.TFRecordDataset(list(index.files)):
        features = schema.parse_serialized(serialized, 128, 128)
        if features["clip_id"].numpy().decode() == "nobody":
            assert features["face_valid"].numpy().sum() == 0
            assert features["audio_valid"].numpy().tolist() == [1] * 6
            break
    else:
        pytest.fail("the clip without a face is missing from the records")


def prepare_args(shared_dir, out, corpus="cremad", root=None):
    return [
        "prepare",
        "--corpus",
        corpus,
        "--root",
        str(root or shared_dir / "data" / "CREMA-D"),
        "--out",
        str(out),
        "--windows",
        "6",
        "--face-embedder",
        f"keras:{shared_dir / 'weights' / FER}",
        "--clips-per-shard",
        "2",
    ]


@pytest.fixture(scope="module")
def prepared(shared_dir_module, tmp_path_factory):
    out = tmp_path_factory.mktemp("cremad")
    assert main(prepare_args(shared_dir_module, out)) == 0
    return out


@pytest.mark.slow
def test_prepare_the_cremad_sample(prepared):
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["num_clips"] == 12 and manifest["num_failed"] == 0
    assert len(manifest["shards"]) == 6
    assert manifest["windowing"] == {"num_windows": 6, "window_seconds": 0.5}
    assert (
        manifest["embedders"]["face"]["sha256"]
        and manifest["embedders"]["audio"]["name"] == "logmel-mean-std-v1"
    )
    video_rates = [c["face_found_rate"] for name, c in manifest["clips"].items() if name.startswith("1001")]
    assert len(video_rates) == 6 and min(video_rates) >= 0.95
    assert all(
        c["face_found_rate"] is None for name, c in manifest["clips"].items() if name.startswith("1002")
    )
    index = records.index_records(prepared)  # the core's reader accepts them
    assert (index.num_windows, index.audio_dim, index.face_dim) == (6, 128, 128)
    assert index.label_names == ("anger", "disgust", "fear", "happy", "neutral", "sad")
    assert index.subject_ids == ["1001", "1002"]
    parsed = {}
    for serialized in tf.data.TFRecordDataset(list(index.files)):
        features = schema.parse_serialized(serialized, 128, 128)
        parsed[features["clip_id"].numpy().decode()] = features
    assert parsed["1001_DFA_ANG_XX"]["face_valid"].numpy().sum() >= 4
    assert parsed["1002_DFA_ANG_XX"]["face_valid"].numpy().sum() == 0  # mp3 only: every face window masked
    assert not list(prepared.glob("*.tmp"))


@pytest.mark.slow
def test_prepare_resumes_after_a_kill_with_identical_records(shared_dir, prepared, tmp_path):
    out = tmp_path / "killed"
    args = prepare_args(shared_dir, out)
    process = subprocess.Popen(
        [sys.executable, "-m", "mater_tf.cli.main", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,  # not the checkout: `-m` would import its sources instead of the installed package
    )
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and len(list(out.glob("*.tfrecord.json"))) < 2:
        time.sleep(0.05)
    assert process.poll() is None, "prepare finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "manifest.json").exists()
    assert main(args) == 0
    first = sorted(p.name for p in prepared.glob("*.tfrecord"))
    assert sorted(p.name for p in out.glob("*.tfrecord")) == first
    for name in first:
        assert (out / name).read_bytes() == (prepared / name).read_bytes(), name
    assert json.loads((out / "manifest.json").read_text())["num_clips"] == 12
    assert main(args[:-1] + ["3"]) == 2  # other settings into the same folder are refused


@pytest.mark.slow
def test_clips_extracted_side_by_side_give_the_same_records_as_one_at_a_time(shared_dir, prepared, tmp_path):
    # `prepared` ran with the default 2 workers: two clips' faces detected, tracked and embedded
    # at once in threads. One worker does one clip at a time.
    out = tmp_path / "one-worker"
    assert main([*prepare_args(shared_dir, out), "--workers", "1"]) == 0
    names = sorted(p.name for p in prepared.glob("*.tfrecord"))
    assert names and sorted(p.name for p in out.glob("*.tfrecord")) == names
    for name in names:
        assert (out / name).read_bytes() == (prepared / name).read_bytes(), name


def test_extraction_keeps_the_clips_order_with_at_most_workers_at_once():
    import threading

    from mater_tf.corpora import Clip
    from pipelines.prepare import extracted_clips

    class SlowFirstExtractor:  # earlier clips take longer, so they finish after later ones
        def __init__(self):
            self.lock, self.running, self.most = threading.Lock(), 0, 0

        def extract(self, path, clip_id, **_):
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(0.02 * (6 - int(clip_id)))
            with self.lock:
                self.running -= 1
            raise MediaError(f"{path}: clip {clip_id} done")  # an outcome without a record

    clips = [Clip(f"/media/{i}.wav", str(i), "csv", "s", 0, "x") for i in range(6)]
    pulled = []

    def decoded():  # counts how far ahead of the outcomes the decoded clips are taken
        for index in range(6):
            pulled.append(index)
            yield np.zeros(16000, np.float32), "", 0.0

    extractor = SlowFirstExtractor()
    outcomes_in_order = extracted_clips(extractor, clips, decoded(), workers=2)
    first = next(outcomes_in_order)
    assert len(pulled) <= 3  # workers + 1 in hand: a long corpus is not read ahead whole
    outcomes = [first, *outcomes_in_order]
    assert [outcome.clip_id for outcome in outcomes] == [str(i) for i in range(6)]
    assert [outcome.failure for outcome in outcomes] == [f"/media/{i}.wav: clip {i} done" for i in range(6)]
    assert extractor.most == 2


def test_prepare_bad_input_gets_one_line(shared_dir, tmp_path, capsys):
    assert (
        main(
            ["prepare", "--corpus", "cremad", "--root", str(tmp_path / "none"), "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "is not a folder" in capsys.readouterr().err
    root = shared_dir / "data" / "CREMA-D"
    assert main(["prepare", "--corpus", "cremad", "--root", str(root), "--out", str(tmp_path / "o")]) == 2
    assert "--face-embedder is needed" in capsys.readouterr().err


@pytest.mark.slow
def test_a_bad_clip_is_skipped_and_recorded(shared_dir, tmp_path):
    (tmp_path / "junk.flv").write_bytes(b"FLV" + os.urandom(2000))
    source = shared_dir / "data" / "CREMA-D" / "AudioMP3"
    (tmp_path / "clips.csv").write_text(
        "path,label,subject\n"
        + "".join(
            f"{p},{p.name.split('_')[2]},s{i % 3}\n" for i, p in enumerate(sorted(source.glob("*.mp3"))[:3])
        )
        + f"{tmp_path / 'junk.flv'},ANG,s0\n{tmp_path / 'gone.wav'},ANG,s1\n"
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "prepare",
                "--corpus",
                "csv",
                "--root",
                str(tmp_path / "clips.csv"),
                "--out",
                str(out),
                "--modalities",
                "audio",
            ]
        )
        == 1  # as predict: clips failed, the others' records written
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_clips"] == 3 and set(manifest["failed"]) == {"junk", "gone"}
    assert "junk.flv" in manifest["failed"]["junk"] and "file not found" in manifest["failed"]["gone"]


@pytest.fixture(scope="module")
def trained_on_real_clips(shared_dir_module, tmp_path_factory, cli_command):
    """Records of the 12 real CREMA-D clips in three subject groups (csv corpus), and a tiny model."""
    folder = tmp_path_factory.mktemp("real")
    files = sorted((shared_dir_module / "data" / "CREMA-D").rglob("*_XX.*"))
    (folder / "clips.csv").write_text(
        "path,label,subject\n"
        + "".join(f"{p},{p.name.split('_')[2]},g{i % 3}\n" for i, p in enumerate(files))
    )
    assert main(prepare_args(shared_dir_module, folder / "records", "csv", folder / "clips.csv")) == 0
    sets = [
        f"data.source={folder / 'records'}",
        "cv.num_folds=3",
        "model.num_layers=1",
        "model.d_model=8",
        "model.num_heads=2",
        "model.ff_dim=16",
        "model.head_hidden_dim=8",
        "train.epochs=2",
        "train.batch_size=4",
    ]
    assert main(cli_command("train", folder / "runs", "r", sets)) == 0
    return folder / "runs" / "quickstart" / "r"


@pytest.mark.slow
def test_predict_on_a_real_clip(shared_dir, ravdess_speech, trained_on_real_clips, tmp_path, capsys):
    clip = shared_dir / "data" / "CREMA-D" / "VideoFlash" / "1001_DFA_HAP_XX.flv"
    wav = (
        shared_dir
        / "data"
        / "RAVDESS"
        / "Audio_Speech_Actors_01-24"
        / "Actor_02"
        / "03-01-03-01-01-01-02.wav"
    )
    assert (
        main(["predict", str(clip), str(wav), "--model", str(trained_on_real_clips), "--out", str(tmp_path)])
        == 0
    )
    result = json.loads((tmp_path / "1001_DFA_HAP_XX.json").read_text())
    assert result["emotion"] in result["labels"]
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert set(result) >= {"audio_probabilities", "face_probabilities", "windows", "segments"}
    # The whole clip, window by window (a window counts when half of it has audio).
    assert len(result["windows"]) == int(np.floor(result["duration"] / 0.5 + 0.5))
    assert result["face_found_rate"] >= 0.95
    present = [w for w in result["windows"] if w["face_found"]]
    assert present and all(sum(w["face_probabilities"]) == pytest.approx(1.0, abs=1e-3) for w in present)
    assert all(set(w["attention"]) == {"audio", "face"} for w in present)
    assert (tmp_path / "1001_DFA_HAP_XX.png").read_bytes()[:4] == b"\x89PNG"
    assert result["face"] == "found" and result["face_emotion"] in result["labels"]
    unknown = json.loads((tmp_path / "03-01-03-01-01-01-02.json").read_text())  # a clip no corpus reader saw
    assert unknown["face_found_rate"] is None and unknown["face"] == "no face"
    assert (
        main(
            [
                "predict",
                str(tmp_path / "gone.mp4"),
                "--model",
                str(trained_on_real_clips),
                "--out",
                str(tmp_path),
            ]
        )
        == 1  # a clip that failed (docs/prepare.md, "Exit codes")
    )
    assert "gone.mp4: file not found" in capsys.readouterr().out


@pytest.mark.slow
def test_predict_says_no_face(ravdess_speech, faceless_video, trained_on_real_clips, tmp_path, capsys):
    from mater_tf.reporting.timeline import timeline_figure

    wav = ravdess_speech("03-01-03-01-01-01-02.wav")  # audio only, given to a model with the face modality
    out = tmp_path / "out"
    clips = [str(faceless_video), str(wav)]
    assert main(["predict", *clips, "--model", str(trained_on_real_clips), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    for path, found_rate in ((faceless_video, 0.0), (wav, None)):
        stem = path.stem
        result = json.loads((out / f"{stem}.json").read_text())
        assert result["face"] == "no face" and result["face_found_rate"] == found_rate
        assert result["face_emotion"] is None and result["face_probabilities"] is None
        assert result["audio_emotion"] in result["labels"]
        assert not any(w["face_found"] or w["face_probabilities"] for w in result["windows"])
        assert all(list(w["attention"]) == ["audio"] for w in result["windows"])
        # No face: the fused decision is the voice's.
        assert result["emotion"] == result["audio_emotion"]
        assert result["probabilities"] == pytest.approx(result["audio_probabilities"], abs=2e-3)
        line = next(text for text in printed if text.startswith(str(path)))
        assert f"; audio {result['audio_emotion']}, no face; " in line
        assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        face_row = timeline_figure(result).axes[2]
        assert face_row.get_ylabel() == "face" and [t.get_text() for t in face_row.texts] == ["no face"]


def test_predict_without_a_model(tmp_path, capsys):
    assert main(["predict", "x.mp4", "--model", str(tmp_path)]) == 2
    assert "no exported model there" in capsys.readouterr().err


def export_log_mel_model(out, frames):
    """An untrained audio-only MATER with the small log-mel front end, exported as `mater-tf export` does."""
    from mater_tf.models.mater import MATER
    from mater_tf.serving.export import export_saved_model

    model = MATER(
        audio_dim=128,
        face_dim=1,
        num_classes=2,
        num_windows=4,
        modalities=("audio",),
        num_layers=1,
        d_model=8,
        num_heads=2,
        ff_dim=16,
        head_hidden_dim=8,
        audio_frontend="small",
        log_mel_frames=frames,
    )
    metadata = {
        "num_windows": 4,
        "window_seconds": 0.5,
        "modalities": ["audio"],
        "audio_frontend": "small",
        "embedders": {"audio": {"spec": "logmel"}},
    }
    return export_saved_model(model, out, ["calm", "angry"], metadata)


@pytest.mark.slow
def test_predict_with_a_log_mel_front_end(ravdess_speech, tmp_path, capsys):
    wav = str(ravdess_speech("03-01-01-01-01-01-01.wav"))
    current = export_log_mel_model(tmp_path / "current", frames=48)  # 0.5 s windows: 48 whole frames inside
    assert main(["predict", wav, "--model", str(current), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "03-01-01-01-01-01-01.json").read_text())
    assert result["emotion"] in ("calm", "angry") and "face" not in result
    older = export_log_mel_model(
        tmp_path / "older", frames=50
    )  # records cut before windows stopped overlapping
    assert main(["predict", wav, "--model", str(older)]) == 2
    error = capsys.readouterr().err
    assert "learns from 50-frame log-mel windows, but a 0.5 s window is now 48 frames" in error
    assert "run mater-tf prepare again and retrain" in error and "Traceback" not in error


@pytest.mark.slow
def test_predict_reads_a_tf_serving_model_base(ravdess_speech, tmp_path):
    """`mater-tf export`'s layout: BASE/<version>/ with mater_tf.json in assets.extra/."""
    wav = str(ravdess_speech("03-01-01-01-01-01-01.wav"))
    flat = export_log_mel_model(tmp_path / "flat", frames=48)
    assert main(["predict", wav, "--model", str(flat), "--out", str(tmp_path / "flat_out")]) == 0
    version = tmp_path / "base" / "3"
    shutil.copytree(flat, version)
    (version / "assets.extra").mkdir()
    (version / "mater_tf.json").rename(version / "assets.extra" / "mater_tf.json")
    assert main(["predict", wav, "--model", str(tmp_path / "base"), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "03-01-01-01-01-01-01.json").read_text())
    assert result["model"] == str(version)
    flat_result = json.loads((tmp_path / "flat_out" / "03-01-01-01-01-01-01.json").read_text())
    assert result["probabilities"] == pytest.approx(flat_result["probabilities"], abs=1e-6)


@pytest.mark.slow
def test_a_phone_recording_and_a_misnamed_file_are_prepared_and_predicted(
    phone_recording, shared_dir, tmp_path, capsys
):
    """Media is judged by what FFmpeg finds in it: an .m4a (AAC in MP4), an mp3 named .wav."""
    m4a, seconds = phone_recording()
    shutil.copyfile(
        shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3", tmp_path / "mp3.wav"
    )
    (tmp_path / "clips.csv").write_text("path,label,subject\nvoice memo.m4a,angry,a\nmp3.wav,sad,b\n")
    out = tmp_path / "records"
    argv = ["prepare", "--corpus", "csv", "--root", str(tmp_path / "clips.csv"), "--out", str(out)]
    assert main([*argv, "--modalities", "audio"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_clips"] == 2 and not manifest["failed"]
    # An AAC frame is 1024 samples (23 ms at 44.1 kHz): the length is the source's within one frame.
    assert manifest["clips"]["voice memo"]["duration"] == pytest.approx(seconds, abs=0.025)
    model = export_log_mel_model(tmp_path / "model", frames=48)
    assert main(["predict", str(m4a), "--model", str(model), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "voice memo.json").read_text())
    assert result["duration"] == pytest.approx(seconds, abs=0.025)
    assert "unknown media type" not in capsys.readouterr().out


@pytest.mark.slow
def test_predict_on_a_folder_counts_what_it_passed_over(ravdess_speech, tmp_path, capsys):
    """A folder that links to a tree of other files (/usr: 122,589): counts by reason, not a line each."""
    folder = tmp_path / "clips"
    (folder / "lib").mkdir(parents=True)
    os.symlink(ravdess_speech("03-01-01-01-01-01-01.wav"), folder / "voice.wav")
    for index in range(300):
        (folder / "lib" / f"module{index}.py").write_text("pass")
    os.symlink(tmp_path / "nowhere", folder / "gone.wav")
    model = export_log_mel_model(tmp_path / "model", frames=48)
    assert main(["predict", str(folder), "--model", str(model), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "mater-tf predict: 301 files passed over" in printed
    assert "  300 passed over: not a media file (e.g." in printed
    assert "  1 passed over: broken symbolic link (e.g." in printed
    assert len([line for line in printed.splitlines() if "passed over" in line]) == 3
    with (tmp_path / "out" / "passed_over.csv").open() as handle:
        assert len(handle.read().splitlines()) == 1 + 301
