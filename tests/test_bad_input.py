"""Every input handled: one clear line per mistake, nothing lost, a quiet terminal.

Tiny inputs: real RAVDESS wavs linked into a messy folder, audio only, the
log-mel embedder (no weights); no training here.
"""

import errno
import json
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from mater_tf.cli.main import clean_message, main
from mater_tf.data import records, schema

WAVS = ("03-01-05-01-01-01-01.wav", "03-01-05-01-01-01-02.wav", "03-01-04-01-01-01-01.wav")


def error_line(capsys) -> str:
    """The one line a refused command prints (and no traceback)."""
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip() and not line.startswith("prepare: ")]
    assert "Traceback" not in captured.err
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.fixture
def messy_csv(tmp_path, ravdess_speech):
    """A CSV corpus: names with spaces and non-ASCII, two files called the same, an empty subject."""
    folders = [tmp_path / "corpus" / "Séance 1", tmp_path / "corpus" / "session 2"]
    for folder in folders:
        folder.mkdir(parents=True)
    (folders[0] / "take.wav").symlink_to(ravdess_speech(WAVS[0]))
    (folders[1] / "take.wav").symlink_to(ravdess_speech(WAVS[1]))
    (folders[1] / "ängry 2.wav").symlink_to(ravdess_speech(WAVS[2]))
    csv_path = tmp_path / "corpus" / "clips.csv"
    csv_path.write_text(
        "path,label,subject\n"
        "Séance 1/take.wav,angry,a1\n"
        "session 2/take.wav,angry,a2\n"
        "session 2/ängry 2.wav,sad,a1\n"
        "session 2/take.wav,sad,\n",
        encoding="utf-8",
    )
    return csv_path


def prepare_argv(root, out, *extra):
    return [
        "prepare",
        "--corpus",
        "csv",
        "--root",
        str(root),
        "--out",
        str(out),
        "--modalities",
        "audio",
        *extra,
    ]


def shard_clip_ids(out) -> list[str]:
    ids = []
    for path in sorted(out.glob("*.tfrecord")):
        for serialized in tf.data.TFRecordDataset(str(path)):
            ids.append(schema.parse_serialized(serialized, 128, 1)["clip_id"].numpy().decode())
    return ids


def test_messy_csv_is_prepared_with_every_row_accounted_for(messy_csv, tmp_path, capsys, monkeypatch):
    out = tmp_path / "records"
    assert main(prepare_argv(messy_csv, out, "--clips-per-shard", "2")) == 0
    printed = capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    # Two files named take.wav: distinct ids, and the manifest counts what the shards hold.
    expected = ["Séance 1/take", "session 2/take", "ängry 2"]
    assert sorted(manifest["clips"]) == sorted(shard_clip_ids(out)) == expected
    assert manifest["num_clips"] == 3 and manifest["num_files_seen"] == 4
    assert manifest["skipped_files"] == {
        str(messy_csv.parent / "session 2" / "take.wav"): manifest["skipped_files"][
            str(messy_csv.parent / "session 2" / "take.wav")
        ]
    }
    assert "clips.csv:5: empty subject" in next(iter(manifest["skipped_files"].values()))
    # The terminal says which line was passed over and why, and the label set with counts.
    assert "3 csv clips to prepare from 4 rows seen (1 passed over)" in printed.out
    assert "1 passed over: empty subject" in printed.out and "clips.csv:5" in printed.out
    assert "2 labels: angry 2, sad 1" in printed.out
    # Library noise stays off the terminal (TensorFlow's retracing warnings, C++ logs).
    assert "retracing" not in printed.err and "tensorflow" not in printed.err.lower()

    # The same corpus named by another path (relative, from another folder) resumes: nothing to redo.
    monkeypatch.chdir(messy_csv.parent.parent)
    relative = os.path.relpath(messy_csv)
    assert main(prepare_argv(relative, os.path.relpath(out), "--clips-per-shard", "2")) == 0
    capsys.readouterr()
    # Settings that really differ are named.
    assert main(prepare_argv(relative, out, "--clips-per-shard", "2", "--windows", "6")) == 2
    assert "other settings (--windows: 8 there, 6 now)" in error_line(capsys)


def test_a_label_typo_is_shown_and_fixed_with_labels(tmp_path, ravdess_speech, capsys):
    (tmp_path / "a.wav").symlink_to(ravdess_speech(WAVS[0]))
    rows = "".join(f"a.wav,happy,s{i}\n" for i in range(6)) + "a.wav,hapy,s9\n"
    (tmp_path / "clips.csv").write_text("path,label,subject\n" + rows)
    out = tmp_path / "out"
    # --labels refuses the typo by line, before any work.
    assert main(prepare_argv(tmp_path / "clips.csv", out, "--labels", "happy,sad")) == 2
    assert "clips.csv: labels not in --labels happy,sad: line 8 'hapy'; correct those lines" in error_line(
        capsys
    )
    assert not out.exists()


def test_label_summary_points_at_a_likely_typo():
    from mater_tf.cli.prepare import label_summary
    from mater_tf.corpora import Clip

    clips = [Clip("p", str(i), "csv", "s", 0, "happy") for i in range(6)] + [
        Clip("p", "x", "csv", "s", 1, "hapy")
    ]
    line = label_summary(clips, ("happy", "hapy"))
    assert line.startswith("2 labels: happy 6, hapy 1; 'hapy' has a single clip") and "--labels" in line


def test_clips_per_shard_zero_is_one_line_and_leaves_nothing_behind(messy_csv, tmp_path, capsys):
    out = tmp_path / "records"
    assert main(prepare_argv(messy_csv, out, "--clips-per-shard", "0")) == 2
    assert "--clips-per-shard 0 must be at least 1 (default 64)" in error_line(capsys)
    assert not (out / "plan.json").exists()


@pytest.mark.parametrize("option", ["--detect-every", "--detect-side"])
def test_a_detection_setting_below_one_is_one_line(messy_csv, tmp_path, capsys, option):
    out = tmp_path / "records"
    assert main(prepare_argv(messy_csv, out, option, "0")) == 2
    default = {"--detect-every": 5, "--detect-side": 320}[option]
    assert f"{option} 0 must be at least 1 (default {default})" in error_line(capsys)
    assert not out.exists()


def test_the_extractor_refuses_a_detection_setting_that_is_not_a_whole_number():
    from mater_tf.data.extraction import build_extractor
    from mater_tf.errors import UserError

    with pytest.raises(
        UserError, match=r"--detect-every 2.5 must be a whole number of at least 1 \(default 5\)"
    ):
        build_extractor(4, 0.5, ["audio"], None, "logmel", detect_every=2.5)


def test_a_resumed_run_with_another_face_detection_setting_is_refused():
    from pipelines.prepare import plan_difference

    face = {"name": "keras-mini", "sha256": "ab12", "detect_every": 5, "detect_side": 320}
    plan = {"corpus": "cremad", "embedders": {"face": face}, "clips": []}
    # A plan written before the detection settings were recorded: every frame, 320 px.
    before = {
        "corpus": "cremad",
        "embedders": {"face": {"name": "keras-mini", "sha256": "ab12"}},
        "clips": [],
    }
    assert plan_difference(before, plan) == (
        "--detect-every / --detect-side: every 1 frames at 320 px there, every 5 frames at 320 px now"
    )
    assert plan_difference(plan, plan) == ""


def test_an_out_folder_that_cannot_be_written(messy_csv, tmp_path, capsys, monkeypatch):
    (tmp_path / "plain").write_text("a file")
    assert main(prepare_argv(messy_csv, tmp_path / "plain" / "records")) == 2
    assert "plain/records: part of that path is a file, not a folder; choose a folder" in error_line(capsys)

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr("pathlib.Path.mkdir", read_only)
    assert main(prepare_argv(messy_csv, tmp_path / "ro")) == 2
    assert "cannot write there (Read-only file system); choose a folder you can write to" in error_line(
        capsys
    )


@pytest.mark.parametrize("weights", ["notes.txt", "fer2013_mini_xception.hdf5"])
def test_a_vggm_spec_of_another_file_is_one_line_and_writes_no_plan(
    messy_csv, shared_dir, tmp_path, capsys, weights
):
    """A text file, or a Keras model that is not VGG-M (it loaded, then crashed at the first face)."""
    (tmp_path / "notes.txt").write_text("not a model\n")
    path = tmp_path / weights if weights == "notes.txt" else shared_dir / "weights" / weights
    out = tmp_path / "records"
    argv = prepare_argv(messy_csv, out, "--face-embedder", f"vggm:{path}")
    argv[argv.index("audio")] = "audio,face"
    assert main(argv) == 2
    line = error_line(capsys)
    assert (
        str(path) in line and "vgg-m-face-bn-fer.mat or the .keras file mater-tf weights convert-vggm" in line
    )
    assert not (out / "plan.json").exists()


def test_a_face_model_that_loads_but_cannot_embed_is_refused_at_once(shared_dir, tmp_path):
    import keras

    from mater_tf.errors import UserError
    from mater_tf.features.embedders import face_embedder

    # A face "embedder" whose input takes 5 channels: no RGB crop fits it.
    inputs = keras.Input((32, 32, 5))
    keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))).save(
        tmp_path / "five.keras"
    )
    with pytest.raises(
        UserError, match=r"--face-embedder keras:.*five.keras: the model loads but cannot embed"
    ):
        face_embedder(f"keras:{tmp_path / 'five.keras'}")


def test_a_prepare_stopped_before_its_first_shard_does_not_block_a_corrected_command(
    messy_csv, tmp_path, capsys, monkeypatch
):
    """Its plan.json pins nothing worth finishing: another command replaces it (one with a shard does not)."""

    def crashes(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "records"
    monkeypatch.setattr("pipelines.prepare.decoded_clips", crashes)
    assert main(prepare_argv(messy_csv, out, "--windows", "8")) == 130
    assert (out / "plan.json").is_file() and not list(out.glob("*.tfrecord"))
    capsys.readouterr()
    monkeypatch.undo()
    assert main(prepare_argv(messy_csv, out, "--windows", "6")) == 0
    assert json.loads((out / "manifest.json").read_text())["windowing"]["num_windows"] == 6
    assert main(prepare_argv(messy_csv, out, "--windows", "4")) == 2  # shards written: refused
    assert "other settings (--windows: 6 there, 4 now)" in error_line(capsys)


def test_a_warning_during_prepare_gets_its_own_line_not_the_progress_line(monkeypatch):
    import io
    import logging

    from pipelines.prepare import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    handler = logging.StreamHandler(terminal)
    logging.getLogger().addHandler(handler)
    try:
        progress = Progress(2)
        progress.step()
        logging.getLogger("pipelines.prepare").warning("skipped broken.mp3: corrupt")
        progress.step()
        progress.close()
    finally:
        logging.getLogger().removeHandler(handler)
    # The line is cleared (ESC [K) before the warning, which ends with its own newline.
    assert re.fullmatch(
        r"\rprepare: 1/2 clips[^\n]*\r\x1b\[Kskipped broken.mp3: corrupt\n\rprepare: 2/2 clips[^\n]*\n",
        terminal.getvalue(),
    )
    assert not handler.filters  # the filter leaves with the progress


def test_a_full_disk_keeps_the_finished_shards(messy_csv, tmp_path, capsys, monkeypatch):
    out = tmp_path / "records"
    real_write = records.write_shard
    written = []

    def fill_up(path, clips):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        return real_write(path, clips)

    monkeypatch.setattr(records, "write_shard", fill_up)
    assert main(prepare_argv(messy_csv, out, "--clips-per-shard", "2")) == 2
    line = error_line(capsys)
    assert "(the disk is full); free some space and run the same command again" in line
    assert [p.name for p in out.glob("*.tfrecord")] == [written[0].name] and not list(out.glob("*.tmp"))
    monkeypatch.setattr(records, "write_shard", real_write)
    assert main(prepare_argv(messy_csv, out, "--clips-per-shard", "2")) == 0  # finishes the rest
    assert json.loads((out / "manifest.json").read_text())["num_clips"] == 3


def test_a_missing_optional_extra_names_the_install(messy_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    assert main(prepare_argv(messy_csv, tmp_path / "out")) == 2
    assert "needs the media extra (missing: av): pip install 'mater-tf[media]'" in error_line(capsys)
    monkeypatch.setitem(sys.modules, "keras_tuner", None)
    assert main(["tune", "--workdir", str(tmp_path / "runs")]) == 2
    assert "pip install 'mater-tf[tune]'" in error_line(capsys)


def test_a_second_training_of_the_same_run_is_refused(tmp_path, capsys):
    from mater_tf.training import rundir

    run_dir = tmp_path / "quickstart" / "busy"
    with rundir.run_lock(run_dir):  # another process training it
        assert main(["train", "--workdir", str(tmp_path), "--run", "busy"]) == 2
        line = error_line(capsys)
        assert f"another mater-tf process (pid {os.getpid()}) is training this run" in line
        assert "--run NEW_NAME" in line
        assert main(["cv", "--workdir", str(tmp_path), "--run", "busy", "--restart"]) == 2
        assert "another mater-tf process" in error_line(capsys)
    assert (run_dir / ".lock").is_file()  # --restart deleted nothing while it was held


def test_interrupting_says_what_is_kept_per_command(tmp_path, capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("mater_tf.cli.prepare.run", interrupted)
    monkeypatch.setattr("mater_tf.cli.train.run", interrupted)
    assert main(["prepare", "--corpus", "csv", "--root", "x.csv", "--out", "o"]) == 130
    line = error_line(capsys)
    assert "shards already written are kept" in line and "epoch" not in line
    assert main(["train"]) == 130
    assert "resume from the last finished epoch" in error_line(capsys)


def test_tensorflow_internals_are_stripped_from_messages(capsys, monkeypatch):
    from mater_tf.errors import UserError

    message = (
        "records/a.tfrecord: corrupted record at 12 {{function_node __inference_next_44}} "
        "[[{{node IteratorGetNext}}]] [Op:IteratorGetNext]\n more"
    )
    assert clean_message(message) == "records/a.tfrecord: corrupted record at 12 more"

    def fails(args):
        raise UserError(message)

    monkeypatch.setattr("mater_tf.cli.train.run", fails)
    assert main(["train"]) == 2
    assert error_line(capsys) == "mater-tf train: error: records/a.tfrecord: corrupted record at 12 more"


def test_the_terminal_has_no_tensorflow_import_banner(tmp_path):
    """TensorFlow's C++ prints cuFFT/cuDNN/cuBLAS lines at import unless told before it loads."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ONEDNN_MAX_CPU_ISA")}
    result = subprocess.run(
        [sys.executable, "-m", "mater_tf.cli.main", "train", "--set", "cv.num_folds=40"],
        cwd=tmp_path,  # not the checkout (`-m` would import its sources)
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "Unable to register" not in result.stderr and "tensorflow" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == (
        "mater-tf train: error: the data has 24 subjects but cv.num_folds=40: "
        "set --set cv.num_folds=24 or fewer (at least 3)"
    )
    assert all(line.startswith("wrote 960 synthetic clips") for line in lines[:-1])  # mater-tf's own


def test_predict_outputs_of_clips_with_the_same_name_do_not_overwrite(tmp_path, monkeypatch):
    from mater_tf.serving.prediction_files import output_names, write_prediction

    clips = ["a/clip.mp4", "b/clip.mp4", "x/other.wav", "a/clip.wav"]
    names = output_names(clips)
    assert names == {
        "a/clip.mp4": "a_clip.mp4",
        "b/clip.mp4": "b_clip",
        "x/other.wav": "other",
        "a/clip.wav": "clip.wav",
    }
    assert output_names(["/d/a/clip.mp4", "/e/a/clip.mp4"]) == {
        "/d/a/clip.mp4": "d_a_clip",
        "/e/a/clip.mp4": "e_a_clip",
    }
    monkeypatch.setattr("mater_tf.reporting.timeline.timeline_png", lambda result: b"png")
    for clip in clips:
        write_prediction({"clip": clip}, tmp_path, names[clip])
    assert sorted(json.loads(p.read_text())["clip"] for p in tmp_path.glob("*.json")) == sorted(clips)
    assert len(list(tmp_path.glob("*.png"))) == 4


def test_fold_advice_works_when_followed():
    from mater_tf.config import load_config
    from mater_tf.data.folds import split_for_fold, subject_disjoint_folds
    from mater_tf.errors import UserError

    with pytest.raises(UserError) as refused:
        subject_disjoint_folds(["01", "02"], 12)
    message = str(refused.value)
    assert "--set cv.num_folds=2 --set cv.validation=false --set train.early_stopping_patience=0" in message
    advice = message.split("set --set ", 1)[1].split(" (")[0].split(" --set ")
    config = load_config("quickstart", advice)  # the advised settings load and validate
    folds = subject_disjoint_folds(["01", "02"], config.cv.num_folds, config.cv.validation)
    assert split_for_fold(folds, 0, config.cv.validation).test == ("01",)
    with pytest.raises(UserError, match="--set cv.validation=false"):
        split_for_fold([["01"], ["02"]], 0, validation=True)
    with pytest.raises(UserError, match="at least 2 subjects; add another speaker"):
        subject_disjoint_folds(["01"], 2)


def test_prepare_prints_only_what_mater_tf_has_to_say(shared_dir, tmp_path):
    """17 clips: TensorFlow's tf.function retracing warnings (~600 characters each) used to appear."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ONEDNN_MAX_CPU_ISA")}
    root = shared_dir / "data" / "RAVDESS"
    argv = ["prepare", "--corpus", "ravdess", "--root", str(root), "--out", "out", "--modalities", "audio"]
    result = subprocess.run(
        [sys.executable, "-m", "mater_tf.cli.main", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert all(line.startswith("prepare: ") for line in result.stderr.splitlines()), result.stderr
    assert "wrote 17 clips in 1 shards; 0 failed" in result.stdout


def test_the_small_corpus_experiment_fits_the_two_actor_sample():
    from pathlib import Path

    from mater_tf.config import load_config
    from mater_tf.data.folds import split_for_fold, subject_disjoint_folds

    path = Path(__file__).resolve().parents[1] / "experiments" / "small_corpus.yaml"
    config = load_config(str(path), [])
    folds = subject_disjoint_folds(["01", "02"], config.cv.num_folds, config.cv.validation)
    assert [split_for_fold(folds, k, config.cv.validation).train for k in range(2)] == [("02",), ("01",)]
    assert config.train.learning_rate >= 1e-3 and config.train.epochs <= 200
    assert "mater-tf prepare --corpus ravdess --root ../shared/data/RAVDESS" in path.read_text()


@pytest.mark.slow
def test_the_small_corpus_experiment_runs_on_the_sample(shared_dir, tmp_path, capsys):
    from pathlib import Path

    experiment = Path(__file__).resolve().parents[1] / "experiments" / "small_corpus.yaml"
    root = shared_dir / "data" / "RAVDESS"
    records_dir = tmp_path / "sample"
    argv = [
        "prepare",
        "--corpus",
        "ravdess",
        "--root",
        str(root),
        "--out",
        str(records_dir),
        "--modalities",
        "audio",
    ]
    assert main(argv) == 0
    overrides = ["--set", f"data.source={records_dir}", "--set", "train.epochs=3"]
    assert main(["cv", "--experiment", str(experiment), "--workdir", str(tmp_path / "runs"), *overrides]) == 0
    assert "fold 2/2 done" in capsys.readouterr().out
