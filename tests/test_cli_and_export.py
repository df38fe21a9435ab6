"""The command line in-process, the SavedModel in a fresh process, and bad input."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from mater_tf.cli.main import main
from mater_tf.data import records


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_overrides, cli_command):
    """One tiny `mater-tf train` shared by the tests of this module."""
    workdir = tmp_path_factory.mktemp("runs")
    assert main(cli_command("train", workdir, "tiny", tiny_overrides)) == 0
    return workdir / "quickstart" / "tiny"


def test_train_writes_the_whole_run(trained_run):
    for name in ("config.yaml", "split.json", "history.csv", "model.keras", "metrics.json"):
        assert (trained_run / name).is_file(), name
    assert (trained_run / "checkpoints" / "best.weights.h5").is_file()
    assert (trained_run / "export" / "saved_model.pb").is_file()
    event_dirs = {p.parent.name for p in (trained_run / "logs").rglob("events.out.tfevents.*")}
    assert {"train", "validation", "test"} <= event_dirs
    tags = set()
    for path in (trained_run / "logs" / "test").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    assert tags == {"confusion_matrix/av", "confusion_matrix/audio", "confusion_matrix/face"}  # images only
    tags = {}
    for folder in ("validation", "."):
        tags[folder] = set()
        for path in (trained_run / "logs" / folder).glob("events.out.tfevents.*"):
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                tags[folder] |= {value.tag for value in event.summary.value}
    assert {"confusion_matrix", "attention/audio", "attention/face", "epoch_logits_accuracy"} <= tags[
        "validation"
    ]
    assert "hparams/validation_av_accuracy" in tags["validation"]
    assert "_hparams_/session_start_info" in tags["."]
    # HParams lists every scalar beside the knobs: no test figure may be among them.
    assert not [tag for folder in tags.values() for tag in folder if "test" in tag]
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"av", "audio", "face"}


def test_evaluate_reproduces_the_test_metrics(trained_run, capsys):
    before = json.loads((trained_run / "metrics.json").read_text())
    assert main(["evaluate", "--run", str(trained_run)]) == 0
    after = json.loads((trained_run / "metrics.json").read_text())
    assert after["test"] == before["test"]
    assert "AV" in capsys.readouterr().out


def _batch(run_dir):
    split = json.loads((run_dir / "split.json").read_text())
    index = records.index_records(split["records"])
    dataset = records.make_dataset(
        index, split["test"], ["audio", "face"], 5, training=False, with_context=True
    )
    inputs, _, context = next(iter(dataset))
    serialized = [s for s in tf.data.TFRecordDataset(list(index.files)).as_numpy_iterator()]
    return inputs, context, serialized, index


@pytest.mark.slow
def test_exported_model_serves_in_a_fresh_process(trained_run, tmp_path):
    out = tmp_path / "served"
    assert main(["export", "--run", str(trained_run), "--out", str(out)]) == 0
    inputs, context, serialized, index = _batch(trained_run)
    clip_ids = [c.decode() for c in context["clip_id"].numpy()]
    by_id = {records_id: s for records_id, s in zip(index.clip_ids, serialized)}
    np.savez(tmp_path / "inputs.npz", **{k: v.numpy() for k, v in inputs.items()})
    np.save(
        tmp_path / "examples.npy", np.array([by_id[c] for c in clip_ids], dtype=object), allow_pickle=True
    )
    script = f"""
import os, sys
os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"
import numpy as np, tensorflow as tf
loaded = tf.saved_model.load({str(out)!r})
inputs = dict(np.load({str(tmp_path / "inputs.npz")!r}))
served = loaded.signatures["serving_default"](**{{k: tf.constant(v) for k, v in inputs.items()}})
examples = np.load({str(tmp_path / "examples.npy")!r}, allow_pickle=True)
from_examples = loaded.signatures["serve_examples"](examples=tf.constant(list(examples)))
np.savez({str(tmp_path / "served.npz")!r}, **{{k: v.numpy() for k, v in served.items()}},
         examples_probabilities=from_examples["probabilities"].numpy())
assert not any(name.startswith("mater_tf") for name in sys.modules), "mater_tf was imported"
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    served = np.load(tmp_path / "served.npz", allow_pickle=True)
    model = keras.models.load_model(trained_run / "model.keras")
    outputs = model(inputs, training=False)
    expected = tf.nn.softmax(outputs["logits"]).numpy()
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose(served["examples_probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose(
        served["audio_probabilities"], tf.nn.softmax(outputs["audio_logits"]).numpy(), atol=1e-5
    )
    names = json.loads((out / "mater_tf.json").read_text())["label_names"]
    assert [n.decode() for n in served["class_name"]] == [names[i] for i in expected.argmax(-1)]
    metadata = json.loads((out / "mater_tf.json").read_text())
    assert metadata["num_windows"] == 4 and metadata["window_seconds"] == 0.5


def _error_line(capsys):
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert "Traceback" not in captured.err
    assert len(lines) == 1, captured.err
    return lines[0]


def test_export_refuses_a_non_empty_folder(trained_run, tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    assert main(["export", "--run", str(trained_run), "--out", str(tmp_path / "busy")]) == 2
    assert "not empty" in _error_line(capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--set", "model.num_head=4"], "did you mean 'num_heads'"),
        (["train", "--set", "train.learning_rate=fast"], "train.learning_rate='fast' must be a float"),
        (["train", "--experiment", "nowhere.yaml"], "nowhere.yaml' not found"),
        (
            ["train", "--set", "data.source=/nonexistent/records"],
            "no TFRecord shards at '/nonexistent/records'",
        ),
        (["train", "--set", "cv.num_folds=40"], "24 subjects but cv.num_folds=40"),
        (["evaluate", "--run", "/nonexistent/run"], "'/nonexistent/run' does not exist"),
        (["export", "--run", "/nonexistent/run", "--out", "x"], "'/nonexistent/run' does not exist"),
    ],
)
def test_bad_input_gets_one_clear_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in _error_line(capsys)


def test_bad_records_get_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recs").mkdir()
    (tmp_path / "recs" / "a.tfrecord").write_bytes(b"\x00garbage")
    assert main(["train", "--set", f"data.source={tmp_path / 'recs'}"]) == 2
    assert "recs: no manifest.json" in _error_line(capsys)  # not records mater-tf prepare finished
    (tmp_path / "recs" / "manifest.json").write_text('{"shards": ["a.tfrecord"]}')
    assert main(["train", "--set", f"data.source={tmp_path / 'recs'}", "--run", "r1"]) == 2
    assert "a.tfrecord: not a readable TFRecord" in _error_line(capsys)
    records.write_shard(tmp_path / "recs" / "a.tfrecord", [])
    assert main(["train", "--set", f"data.source={tmp_path / 'recs'}", "--run", "r2"]) == 2
    assert "hold no clips" in _error_line(capsys)


def test_a_run_folder_of_another_config_is_refused(trained_run, capsys):
    workdir = trained_run.parent.parent
    assert main(["train", "--workdir", str(workdir), "--run", "tiny", "--set", "model.num_heads=4"]) == 2
    assert "different config" in _error_line(capsys)


def test_evaluate_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["evaluate", "--run", str(tmp_path)]) == 2
    assert "not a mater-tf run directory" in _error_line(capsys)
