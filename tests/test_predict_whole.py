"""`mater-tf predict` on whole clips: the model's input slides over a long video made of real clips."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mater_tf.cli.main import main

FER = "fer2013_mini_xception.hdf5"
LABELS = ["anger", "happy", "sad"]
SOURCES = tuple(f"1001_DFA_{code}_XX.flv" for code in ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"))
FPS, SIDE = 10, 240


def join_clips(paths, out, fps=FPS, side=SIDE):
    """Writes the clips one after the other as one mp4 (mpeg4 + AAC, `fps` frames/s, longest side `side`).

    Each clip contributes its audio and, every 1/fps s, its frame shown at that time, so voice and face
    stay together; returns the seconds at which each clip starts.
    """
    import av

    from mater_tf.media import decode_audio, decode_video

    pieces, starts, elapsed = [], [], 0.0
    for path in paths:
        audio, video = decode_audio(path), decode_video(path, side)
        count = int(len(audio) / 16000 * fps)
        shown = [
            video.frames[max(0, np.searchsorted(video.times, k / fps, "right") - 1)] for k in range(count)
        ]
        pieces.append((audio[: round(count / fps * 16000)], shown))
        starts.append(elapsed)
        elapsed += count / fps
    height, width = pieces[0][1][0].shape[:2]
    with av.open(str(out), "w") as container:
        video_stream = container.add_stream("mpeg4", rate=fps)
        video_stream.width, video_stream.height, video_stream.pix_fmt = width, height, "yuv420p"
        audio_stream = container.add_stream("aac", rate=16000)
        audio_stream.layout = "mono"
        for _, frames in pieces:
            for frame in frames:
                container.mux(video_stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video_stream.encode(None))
        waveform = np.concatenate([audio for audio, _ in pieces])
        for start in range(0, len(waveform), 1024):
            frame = av.AudioFrame.from_ndarray(
                np.float32(waveform[None, start : start + 1024]), format="flt", layout="mono"
            )
            frame.sample_rate = 16000
            container.mux(audio_stream.encode(frame))
        container.mux(audio_stream.encode(None))
    return starts


def export_tiny_model(
    out,
    face_spec,
    num_windows=4,
    window_seconds=0.5,
    modalities=("audio", "face"),
    labels=LABELS,
    audio_frontend="none",
):
    """An untrained tiny MATER exported as `mater-tf export` does, naming the embedders to extract with
    (and, as training does, the configured `audio_frontend`, whether or not it has an audio branch)."""
    import keras

    from mater_tf.features.embedders import face_embedder
    from mater_tf.models.mater import MATER
    from mater_tf.serving.export import export_saved_model

    keras.utils.set_random_seed(3)
    face_dim = face_embedder(face_spec).dim if "face" in modalities else 1
    model = MATER(
        audio_dim=128,
        face_dim=face_dim,
        num_classes=len(labels),
        num_windows=num_windows,
        modalities=modalities,
        num_layers=1,
        d_model=8,
        num_heads=2,
        ff_dim=16,
        head_hidden_dim=8,
        audio_frontend=audio_frontend,
    )
    embedders = {"audio": {"spec": "logmel"}, "face": {"spec": face_spec} if "face" in modalities else None}
    metadata = {
        "num_windows": num_windows,
        "window_seconds": window_seconds,
        "modalities": list(modalities),
        "embedders": embedders,
        "audio_frontend": audio_frontend,
    }
    return export_saved_model(model, out, labels, metadata)


@pytest.mark.slow
def test_a_face_only_model_whose_config_names_an_audio_front_end_reads_no_log_mel(shared_dir, tmp_path):
    # Training records the configured front end even for a face-only model; it has no audio
    # branch to learn it in, so predict must not cut log-mel patches for it.
    from mater_tf.serving.predictor import Predictor

    export = export_tiny_model(
        tmp_path / "export",
        f"keras:{shared_dir / 'weights' / FER}",
        modalities=("face",),
        audio_frontend="small",
    )
    predictor = Predictor(export)
    assert not predictor.learns_audio
    assert not predictor.extractor.keep_log_mel


@pytest.fixture(scope="module")
def long_video(shared_dir_module, tmp_path_factory):
    """The six real CREMA-D videos (about 13 s) joined end to end into one mp4."""
    folder = tmp_path_factory.mktemp("long")
    paths = [shared_dir_module / "data" / "CREMA-D" / "VideoFlash" / name for name in SOURCES]
    starts = join_clips(paths, folder / "interview.mp4")
    return folder / "interview.mp4", starts


@pytest.fixture(scope="module")
def tiny_export(shared_dir_module, tmp_path_factory):
    return export_tiny_model(
        tmp_path_factory.mktemp("model") / "export", f"keras:{shared_dir_module / 'weights' / FER}"
    )


@pytest.fixture(scope="module")
def predictor(tiny_export):
    from mater_tf.serving.predictor import Predictor

    return Predictor(tiny_export)


@pytest.fixture(scope="module")
def whole(predictor, long_video):
    return predictor.predict(long_video[0])


@pytest.mark.slow
def test_the_timeline_covers_the_whole_video(whole, long_video):
    from mater_tf.media import decode_audio

    seconds = len(decode_audio(long_video[0])) / 16000
    assert seconds > 12  # the six clips, not the model's 2 s
    windows = whole["windows"]
    assert len(windows) == int(np.floor(seconds / 0.5 + 0.5))  # every window at least half inside
    assert [w["start"] for w in windows] == pytest.approx(np.arange(len(windows)) * 0.5)
    assert windows[-1]["end"] == pytest.approx(seconds, abs=0.26)
    # Stride 1 over N windows with T = 4: inputs start at 0 .. N - 4.
    assert [s["first_window"] for s in whole["segments"]] == list(range(len(windows) - 3))
    assert whole["duration"] == pytest.approx(seconds, abs=0.26)
    for window in windows:
        for field in ("probabilities", "audio_probabilities"):
            assert sum(window[field]) == pytest.approx(1.0, abs=2e-3)
    assert sum(w["face_found"] for w in windows) >= 0.9 * len(windows)  # a talking head throughout
    assert whole["face_found_rate"] >= 0.9 and whole["frames_decoded"] == pytest.approx(FPS * seconds, abs=3)
    assert whole["emotion"] in LABELS and sum(whole["votes"].values()) == len(windows)


@pytest.mark.slow
def test_a_segment_equals_that_span_scored_alone(predictor, whole, long_video):
    """The segment starting at window k equals the model on windows k..k+3 of the whole-file extractor
    (all frames decoded at once, one log-mel over the whole clip: the path `mater-tf prepare` takes)."""
    import tensorflow as tf

    from mater_tf.data.extraction import Windowing

    count = len(whole["windows"])
    extractor = predictor.extractor
    reference = extractor.__class__(
        Windowing(count, 0.5), extractor.audio_embedder, extractor.face_embedder, extractor.tracker, 640
    ).extract(str(long_video[0]), "interview")
    record = reference.record
    assert record.audio_valid.sum() == count
    found = [w["face_frames_found"] for w in whole["windows"]]
    assert found == record.face_frames_found.tolist()
    serve = predictor.model.signatures["serving_default"]
    for first in (0, 5, count - 4):
        span = slice(first, first + 4)
        inputs = {
            "audio_embedding": record.audio_embedding[span][None],
            "audio_valid": record.audio_valid[span][None],
            "face_embedding": record.face_embedding[span][None],
            "face_valid": record.face_valid[span][None],
        }
        alone = serve(**{k: tf.constant(v, tf.float32) for k, v in inputs.items()})
        segment = next(s for s in whole["segments"] if s["first_window"] == first)
        np.testing.assert_allclose(segment["audio_probabilities"], alone["audio_probabilities"][0], atol=1e-5)
        # MTCNN's boxes move by a pixel or two with the batch of frames it runs on (prepare: 16 frames from
        # the clip start; the stream: one window's frames), which moves these by about 0.005.
        for field in ("probabilities", "face_probabilities"):
            np.testing.assert_allclose(segment[field], alone[field].numpy()[0], atol=1e-2)


@pytest.mark.slow
def test_overlapping_segments_are_averaged_per_window(whole):
    segments = whole["segments"]
    for index in (0, 2, 7, len(whole["windows"]) - 1):
        covering = [s for s in segments if s["first_window"] <= index < s["first_window"] + s["windows"]]
        assert len(covering) == min(index + 1, 4, len(whole["windows"]) - index)
        expected = np.mean([s["probabilities"] for s in covering], axis=0)
        np.testing.assert_allclose(whole["windows"][index]["probabilities"], expected, atol=1e-4)
    mean = np.mean([w["probabilities"] for w in whole["windows"]], axis=0)
    assert whole["emotion"] == LABELS[int(np.argmax(mean))]  # the rule stated in the result
    assert "mean fused probability over all windows" in whole["rule"]


@pytest.mark.slow
def test_a_wider_stride_and_a_clip_shorter_than_the_model(predictor, whole, long_video, shared_dir, tmp_path):
    strided = predictor.predict(long_video[0], stride=4)
    count = len(whole["windows"])
    firsts = [s["first_window"] for s in strided["segments"]]
    assert firsts[:-1] == list(range(0, count - 3, 4)) and firsts[-1] == count - 4  # the tail covered
    by_first = {s["first_window"]: s for s in whole["segments"]}
    for segment in strided["segments"]:
        np.testing.assert_allclose(
            segment["probabilities"], by_first[segment["first_window"]]["probabilities"], atol=1e-5
        )
    # 1.2 s of real speech: 2 present windows in one input padded to 4, as its training record would be.
    import tensorflow as tf

    from mater_tf.media import decode_audio

    wav = tmp_path / "short.wav"
    speech = decode_audio(shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3")
    wav.write_bytes(tf.audio.encode_wav(speech[8000 : 8000 + 19200, None], 16000).numpy())
    short = predictor.predict(wav)
    assert [(w["start"], w["end"]) for w in short["windows"]] == [(0.0, 0.5), (0.5, 1.0)]
    assert [(s["first_window"], s["windows"]) for s in short["segments"]] == [(0, 2)]
    assert short["face"] == "no face" and short["face_emotion"] is None
    assert short["face_found_rate"] is None and not any(w["face_found"] for w in short["windows"])
    record = predictor.extractor.extract(str(wav), "short").record  # the training records' path
    assert record.audio_valid.tolist() == [1, 1, 0, 0]
    alone = predictor.model.signatures["serving_default"](
        **{
            name: tf.constant(getattr(record, name)[None], tf.float32)
            for name in ("audio_embedding", "audio_valid", "face_embedding", "face_valid")
        }
    )
    np.testing.assert_allclose(
        list(short["probabilities"].values()), alone["probabilities"].numpy()[0], atol=1e-4
    )


@pytest.mark.slow
def test_predict_writes_json_csv_and_png(tiny_export, long_video, whole, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(long_video[0]), "--model", str(tiny_export), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "interview.mp4:" in printed and "real-time factor" in printed
    result = json.loads((out / "interview.json").read_text())
    assert result["emotion"] == whole["emotion"] and len(result["windows"]) == len(whole["windows"])
    with (out / "interview.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result["windows"])
    assert float(rows[3]["start"]) == 1.5 and float(rows[3]["end"]) == 2.0
    assert float(rows[3]["fused_happy"]) == pytest.approx(result["windows"][3]["probabilities"][1])
    assert {"audio_anger", "face_sad", "face_found", "face_frames_found"} <= set(rows[0])
    assert (out / "interview.png").read_bytes()[:4] == b"\x89PNG"


CREMAD = ["anger", "disgust", "fear", "happy", "neutral", "sad"]
CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}


@pytest.fixture(scope="module")
def audio_export(tmp_path_factory):
    """A tiny audio-only model with CREMA-D's six labels (no face detection: cheap to run on many clips)."""
    return export_tiny_model(
        tmp_path_factory.mktemp("audio") / "export", None, modalities=("audio",), labels=CREMAD
    )


def read_csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_a_corpus_folder_is_scored_with_its_labels(shared_dir, audio_export, tmp_path, capsys):
    folder = shared_dir / "data" / "CREMA-D" / "AudioMP3"
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--model", str(audio_export), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "6 clips (cremad, 6 labelled)" in printed and "[6/6, ETA 0 s]" in printed
    rows = read_csv(out / "summary.csv")
    assert sorted(row["clip"] for row in rows) == sorted(p.stem for p in folder.glob("*.mp3"))
    for row in rows:
        assert row["label"] == CODES[row["clip"].split("_")[2]] and row["error"] == ""
        assert row["emotion"] in CREMAD and float(row["duration"]) > 1.5 and int(row["windows"]) >= 3
        assert sum(float(row[f"fused_{label}"]) for label in CREMAD) == pytest.approx(1.0, abs=2e-3)
        assert row["face_found_rate"] == ""  # audio only: no face looked for
        assert (out / f"{row['clip']}.json").is_file() and (out / f"{row['clip']}.png").is_file()
    score = json.loads((out / "score.json").read_text())
    right = sum(row["label"] == row["emotion"] for row in rows)
    assert (
        score["clips"] == 6
        and score["correct"] == right
        and score["accuracy"] == pytest.approx(right / 6, abs=1e-4)
    )
    matrix = np.asarray(score["confusion_matrix"])
    assert matrix.sum(axis=1).tolist() == [1] * 6 and np.trace(matrix) == right
    assert "these 6 labelled clips" in score["scope"] and "not a held-out" in score["scope"]
    assert f"Score on these 6 labelled clips (not a held-out estimate): accuracy {right / 6:.3f}" in printed
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_a_csv_of_clips_skips_and_records_bad_ones(shared_dir, audio_export, tmp_path, capsys):
    mp3 = sorted((shared_dir / "data" / "CREMA-D" / "AudioMP3").glob("*.mp3"))
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(100))
    (tmp_path / "clips.csv").write_text(
        "path,label\n"
        f"{mp3[0]},anger\n{mp3[1]},contempt\n{mp3[2]},\njunk.wav,sad\ngone.mp3,sad\n{mp3[0]},anger\n"
    )
    out = tmp_path / "out"
    assert (
        main(["predict", str(tmp_path / "clips.csv"), "--model", str(audio_export), "--out", str(out)]) == 1
    )
    printed = capsys.readouterr().out
    rows = {row["clip"]: row for row in read_csv(out / "summary.csv")}
    assert set(rows) == {mp3[0].stem, mp3[1].stem, mp3[2].stem, "junk", "gone"}
    assert "file not found" in rows["gone"]["error"] and rows["gone"]["emotion"] == ""
    assert "junk.wav" in rows["junk"]["error"]
    assert rows[mp3[2].stem]["label"] == "" and rows[mp3[2].stem]["error"] == ""
    assert "the same file as line 2" in printed  # the repeated row, passed over and said
    assert "1 labelled clips not scored: their labels (contempt)" in printed
    score = json.loads((out / "score.json").read_text())
    assert score["clips"] == 1 and score["correct"] == int(rows[mp3[0].stem]["emotion"] == "anger")


def test_clips_of_a_plain_folder_get_unique_names_and_no_score(shared_dir, audio_export, tmp_path):
    mp3 = shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_HAP_XX.mp3"
    for name in ("monday", "tuesday"):
        (tmp_path / "in" / name).mkdir(parents=True)
        shutil.copy(mp3, tmp_path / "in" / name / "call.mp3")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "in"), "--model", str(audio_export), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.json")) == ["monday_call.json", "tuesday_call.json"]
    assert [row["label"] for row in read_csv(out / "summary.csv")] == ["", ""]
    assert not (out / "score.json").exists()


def test_predict_bad_arguments_get_one_line(audio_export, tmp_path, capsys):
    assert main(["predict", "--model", str(audio_export)]) == 2
    assert "give clips, folders or CSVs to predict, or --live SOURCE" in capsys.readouterr().err
    assert main(["predict", "x.mp4", "--model", str(audio_export), "--stride", "0"]) == 2
    assert "--stride 0: give a positive number" in capsys.readouterr().err
    (tmp_path / "list.csv").write_text("file,label\nx.mp4,sad\n")
    assert main(["predict", str(tmp_path / "list.csv"), "--model", str(audio_export)]) == 2
    error = capsys.readouterr().err
    assert "list.csv: missing column(s) path (header: file,label)" in error and "Traceback" not in error
    assert main(["predict", "--live", str(tmp_path / "camera"), "--model", str(audio_export)]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path / 'camera'}: cannot be opened as media" in error and "--live-format" in error
    assert "Traceback" not in error


def test_predict_does_not_replace_files_it_did_not_write(shared_dir, audio_export, tmp_path, capsys):
    mp3 = shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.csv").write_text("my own notes\n")
    (tmp_path / "notes.txt").write_text("a file\n")
    for out, said in (
        (mine, "holds summary.csv, which mater-tf predict did not write"),
        (tmp_path / "notes.txt", "a file, not a folder"),
    ):
        started = time.perf_counter()
        assert main(["predict", str(mp3), "--model", str(audio_export), "--out", str(out)]) == 2
        assert said in capsys.readouterr().err and time.perf_counter() - started < 1.0  # before any work
    assert (mine / "summary.csv").read_text() == "my own notes\n"
    assert main(["predict", str(mp3), "--model", str(audio_export), "--out", str(mine), "--overwrite"]) == 0
    assert read_csv(mine / "summary.csv")[0]["clip"] == mp3.stem
    out = tmp_path / "out"  # a folder predict wrote: run again, its own files are replaced
    for _ in range(2):
        assert main(["predict", str(mp3), "--model", str(audio_export), "--out", str(out)]) == 0


def test_predict_exits_1_when_every_clip_failed_as_prepare_does(audio_export, tmp_path, capsys):
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(100))
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "junk.wav"), "--model", str(audio_export), "--out", str(out)]) == 1
    assert "no clip could be predicted" in capsys.readouterr().out
    assert "junk.wav" in read_csv(out / "summary.csv")[0]["error"]


@pytest.mark.slow
def test_a_face_only_model_predicts_a_video_and_refuses_a_clip_without_a_face(shared_dir, tmp_path, capsys):
    """The face-only model's signature takes no audio mask (it was always passed: TypeError)."""
    export = export_tiny_model(
        tmp_path / "face", f"keras:{shared_dir / 'weights' / FER}", modalities=("face",)
    )
    video = shared_dir / "data" / "CREMA-D" / "VideoFlash" / SOURCES[0]
    mp3 = shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3"
    out = tmp_path / "out"
    assert main(["predict", str(video), str(mp3), "--model", str(export), "--out", str(out)]) == 1
    result = json.loads((out / f"{video.stem}.json").read_text())
    assert result["face"] == "found" and result["emotion"] in LABELS and "audio_emotion" not in result
    assert result["probabilities"] == result["face_probabilities"]  # the face alone decides
    printed = capsys.readouterr().out
    assert f"{mp3}: no face found in any window" in printed and "reads only the face" in printed
    assert not (out / f"{mp3.stem}.json").exists()


@pytest.fixture(scope="module")
def short_video(shared_dir_module, tmp_path_factory):
    """Two real CREMA-D videos (about 4 s) joined: a stream long enough for several model inputs."""
    folder = tmp_path_factory.mktemp("short")
    join_clips(
        [shared_dir_module / "data" / "CREMA-D" / "VideoFlash" / name for name in SOURCES[:2]],
        folder / "call.mp4",
    )
    return folder / "call.mp4"


@pytest.mark.slow
def test_live_windows_arrive_in_time_and_equal_the_offline_ones(
    predictor, tiny_export, short_video, tmp_path, capsys
):
    offline = predictor.predict(short_video)
    out = tmp_path / "live"
    started = time.monotonic()
    assert (
        main(
            [
                "predict",
                "--live",
                str(short_video),
                "--realtime",
                "--model",
                str(tiny_export),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    elapsed = time.monotonic() - started
    assert elapsed >= offline["duration"] - 0.3  # read at the clip's own pace, not faster
    printed = [line for line in capsys.readouterr().out.splitlines() if "after its end" in line]
    assert len(printed) == len(offline["windows"])
    assert (
        printed[3].startswith("00:01.5-00:02.0 ") and " | audio " in printed[3] and " | face " in printed[3]
    )
    result = json.loads((out / "call.json").read_text())
    outputs = result["live"]["outputs"]
    assert [o["index"] for o in outputs] == list(range(len(offline["windows"])))
    by_first = {s["first_window"]: s for s in offline["segments"]}
    full = [o for o in outputs if o["windows"] == 4]
    assert [o["first_window"] for o in full] == [o["index"] - 3 for o in full] == sorted(by_first)
    for output in full:  # the segment ending at that window, as scored offline
        for field in ("probabilities", "audio_probabilities", "face_probabilities"):
            np.testing.assert_allclose(output[field], by_first[output["first_window"]][field], atol=2e-3)
    for output in outputs:  # within a window's length plus the processing time of its end
        assert 0 <= output["processing"] <= output["latency"] <= 0.5 + output["processing"]
    for live_window, offline_window in zip(result["windows"], offline["windows"]):
        np.testing.assert_allclose(live_window["probabilities"], offline_window["probabilities"], atol=2e-3)
    assert (out / "call.csv").is_file() and (out / "call.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_ctrl_c_ends_a_live_stream_and_still_writes_the_timeline(audio_export, short_video, tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "mater_tf.cli.main", "predict", "--live", str(short_video), "--realtime"]
        + ["--model", str(audio_export), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        # A shell that starts pytest in the background hands its children SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if sum("after its end" in text for text in lines) == 2:
            process.send_signal(signal.SIGINT)
            break
    rest, error = process.communicate(timeout=60)
    assert process.returncode == 0, error
    assert "stopped by Ctrl-C" in rest and "Traceback" not in error
    result = json.loads((out / "call.json").read_text())
    assert result["interrupted"] and 2 <= len(result["windows"]) < 8
    # Every window read is in the timeline; the last one's line may be cut short by the Ctrl-C.
    assert len(result["windows"]) - 1 <= len(result["live"]["outputs"]) <= len(result["windows"])
    assert (out / "call.csv").is_file() and (out / "call.png").is_file()


def test_a_stride_longer_than_the_model_is_refused_in_one_line(shared_dir, audio_export, tmp_path, capsys):
    """With T = 4 and stride 5, window 4 of a 9-window clip would be in no input: no timeline there."""
    mp3 = shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3"
    out = tmp_path / "out"
    assert main(["predict", str(mp3), "--model", str(audio_export), "--out", str(out), "--stride", "5"]) == 2
    error = capsys.readouterr().err
    assert "--stride 5: longer than the model's 4-window input" in error and "give 1 to 4" in error
    assert "Traceback" not in error and not out.exists()


def test_bad_clips_in_a_folder_are_recorded_and_a_ctrl_c_keeps_the_summary(
    shared_dir, audio_export, tmp_path, capsys, monkeypatch
):
    """A video without sound, a corrupt one and a silent clip are skipped with their reason; a Ctrl-C
    on a later clip still leaves summary.csv with every clip finished before it."""
    import tensorflow as tf

    from mater_tf.serving.predictor import Predictor

    folder = tmp_path / "in"
    folder.mkdir()
    mp3 = sorted((shared_dir / "data" / "CREMA-D" / "AudioMP3").glob("*.mp3"))
    shutil.copy(mp3[0], folder / "a_first.mp3")
    _write_video_without_sound(folder / "b_mute.mp4")
    (folder / "c_quiet.wav").write_bytes(tf.audio.encode_wav(np.zeros((16000, 1), np.float32), 16000).numpy())
    shutil.copy(mp3[1], folder / "d_last.mp3")
    (folder / "c_broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    out = tmp_path / "out"
    original = Predictor.predict

    def interrupted_at_the_last(self, source, *args, **kwargs):
        if Path(source).name == "d_last.mp3":
            raise KeyboardInterrupt
        return original(self, source, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict", interrupted_at_the_last)
    assert main(["predict", str(folder), "--model", str(audio_export), "--out", str(out)]) == 130
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "interrupted" in captured.err
    rows = {row["clip"]: row for row in read_csv(out / "summary.csv")}
    assert set(rows) == {"a_first", "b_mute", "c_broken", "c_quiet"}  # the interrupted clip is not listed
    # A file's own advice, not that for a --live device.
    assert "c_broken.mp4: not readable media" in rows["c_broken"]["error"]
    assert "--live-format" not in rows["c_broken"]["error"]
    assert rows["a_first"]["error"] == "" and rows["a_first"]["emotion"] in CREMAD
    assert "b_mute.mp4: has no audio track" in rows["b_mute"]["error"] and rows["b_mute"]["emotion"] == ""
    assert "c_quiet.wav: the audio is silent" in rows["c_quiet"]["error"]
    assert (out / "a_first.json").is_file() and not (out / "b_mute.json").exists()


def _write_video_without_sound(path):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(25):
            image = np.full((48, 64, 3), index * 5, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def test_a_clip_named_like_the_run_files_does_not_overwrite_them(shared_dir, audio_export, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    mp3 = sorted((shared_dir / "data" / "CREMA-D" / "AudioMP3").glob("*.mp3"))
    shutil.copy(mp3[0], folder / "summary.mp3")
    shutil.copy(mp3[1], folder / "score.mp3")
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--model", str(audio_export), "--out", str(out)]) == 0
    rows = read_csv(out / "summary.csv")  # the run's summary, not a clip's timeline
    assert sorted(row["clip"] for row in rows) == ["in_score", "in_summary"]
    assert {"in_summary.json", "in_summary.csv", "in_score.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "in_score.json").read_text())["clip"].endswith("score.mp3")


def test_a_live_run_cut_before_any_window_line_still_writes_the_timeline(
    shared_dir, audio_export, tmp_path, capsys, monkeypatch
):
    """A Ctrl-C right after a window is read and before its line is printed: no latency to report."""
    from mater_tf.serving.predictor import Predictor

    original = Predictor.predict

    def no_window_lines(self, source, *args, **kwargs):
        kwargs["on_window"] = None
        return original(self, source, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict", no_window_lines)
    mp3 = shared_dir / "data" / "CREMA-D" / "AudioMP3" / "1002_DFA_ANG_XX.mp3"
    out = tmp_path / "out"
    assert main(["predict", "--live", str(mp3), "--model", str(audio_export), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()[-1]
    assert "no window line printed" in printed and (out / "1002_DFA_ANG_XX.json").is_file()
