"""The command line in-process, the SavedModel in a fresh process, and bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from mater_tf.cli.main import main
from mater_tf.data import records, schema


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
    base = tmp_path / "served"
    assert main(["export", "--run", str(trained_run), "--out", str(base)]) == 0
    out = base / "1"  # TF Serving's layout: the first version of the model base
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
    names = json.loads((out / "assets.extra" / "mater_tf.json").read_text())["label_names"]
    assert [n.decode() for n in served["class_name"]] == [names[i] for i in expected.argmax(-1)]
    metadata = json.loads((out / "assets.extra" / "mater_tf.json").read_text())
    assert metadata["num_windows"] == 4 and metadata["window_seconds"] == 0.5


@pytest.fixture(scope="module")
def served_base(trained_run, tmp_path_factory):
    """`mater-tf export` of the tiny run into a fresh TF Serving model base (version 1)."""
    base = tmp_path_factory.mktemp("serving") / "mater"
    assert main(["export", "--run", str(trained_run), "--out", str(base)]) == 0
    return base


def _first_records(run_dir, count):
    """The first `count` serialized records of the run's shards, read straight from the files."""
    split = json.loads((run_dir / "split.json").read_text())
    shards = sorted(
        str(path) for path in Path(split["records"]).glob("*.tfrecord*") if path.suffix != ".json"
    )
    return list(tf.data.TFRecordDataset(shards).take(count).as_numpy_iterator())


def _direct_probabilities(run_dir, examples):
    """The Keras model's own fused and per-modality probabilities on serialized records."""
    split = json.loads((run_dir / "split.json").read_text())
    index = records.index_records(split["records"])
    parsed = [schema.parse_serialized(tf.constant(e), index.audio_dim, index.face_dim) for e in examples]
    inputs = {name: tf.stack([p[name] for p in parsed]) for name in schema.input_names(["audio", "face"])}
    outputs = keras.models.load_model(run_dir / "model.keras")(inputs, training=False)
    return inputs, {
        "probabilities": tf.nn.softmax(outputs["logits"]).numpy(),
        "audio_probabilities": tf.nn.softmax(outputs["audio_logits"]).numpy(),
        "face_probabilities": tf.nn.softmax(outputs["face_logits"]).numpy(),
    }


def test_export_writes_tf_servings_layout_with_warmup_from_real_records(trained_run, served_base):
    from tensorflow_serving.apis import prediction_log_pb2

    version = served_base / "1"
    assert sorted(p.name for p in served_base.iterdir()) == ["1"]
    assert (version / "saved_model.pb").is_file() and (version / "variables").is_dir()
    metadata = json.loads((version / "assets.extra" / "mater_tf.json").read_text())
    assert metadata["num_windows"] == 4 and len(metadata["label_names"]) >= 2
    logs = [
        prediction_log_pb2.PredictionLog.FromString(record)
        for record in tf.data.TFRecordDataset(
            str(version / "assets.extra" / "tf_serving_warmup_requests")
        ).as_numpy_iterator()
    ]
    requests = {log.predict_log.request.model_spec.signature_name: log.predict_log.request for log in logs}
    assert len(requests) == len(logs)  # one request per signature
    loaded = tf.saved_model.load(str(version))
    assert set(requests) == set(loaded.signatures) >= {"serving_default", "serve_examples"}
    first = _first_records(trained_run, 4)
    assert list(tf.make_ndarray(requests["serve_examples"].inputs["examples"])) == first
    inputs, expected = _direct_probabilities(trained_run, first)
    dense = {key: tf.make_ndarray(value) for key, value in requests["serving_default"].inputs.items()}
    assert set(dense) == set(inputs)
    for key, value in inputs.items():
        np.testing.assert_array_equal(dense[key], value.numpy())
    for name, request in requests.items():  # every warmup request runs on the served model, as TF Serving's
        result = loaded.signatures[name](
            **{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        )
        if name != "serve_attention":
            np.testing.assert_allclose(result["probabilities"].numpy(), expected["probabilities"], atol=1e-5)


def test_export_adds_versions_and_predict_reads_every_layout(trained_run, served_base, tmp_path, capsys):
    from mater_tf.serving.model_loading import resolve_export

    base = tmp_path / "mater"
    shutil.copytree(served_base, base)
    shutil.copytree(base / "1", base / "9")  # versions compare as numbers: 10 follows 9
    assert main(["export", "--run", str(trained_run), "--out", str(base)]) == 0
    assert sorted(p.name for p in base.iterdir()) == ["1", "10", "9"]
    assert "tensorflow/serving" in capsys.readouterr().out  # how to serve it
    assert main(["export", "--run", str(trained_run), "--out", str(base), "--version", "9"]) == 2
    assert "already holds version 9; leave out --version to write version 11" in _error_line(capsys)
    assert main(["export", "--run", str(trained_run), "--out", str(base), "--version", "0"]) == 2
    assert "--version 0: give a positive number" in _error_line(capsys)
    # Old flat exports (a run's export/) and every folder of the new layout still load in predict.
    assert resolve_export(base) == base / "10"  # the base: its highest version, the one TF Serving serves
    assert resolve_export(base / "9") == base / "9"
    assert resolve_export(trained_run) == trained_run / "export"
    assert resolve_export(trained_run / "export") == trained_run / "export"
    assert main(["export", "--run", str(trained_run), "--out", str(trained_run / "export")]) == 2
    assert "is itself a SavedModel (the older flat export)" in _error_line(capsys)


@pytest.mark.slow
def test_saved_model_cli_runs_both_signatures_of_the_export(trained_run, served_base, tmp_path):
    examples = _first_records(trained_run, 4)
    inputs, expected = _direct_probabilities(trained_run, examples)
    np.save(tmp_path / "examples.npy", np.array(examples, dtype=object), allow_pickle=True)
    np.savez(tmp_path / "inputs.npz", **{key: value.numpy() for key, value in inputs.items()})
    dense = ";".join(f"{key}={tmp_path / 'inputs.npz'}[{key}]" for key in inputs)
    cli = Path(sys.executable).parent / "saved_model_cli"
    command = (
        [str(cli)] if cli.is_file() else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    )
    for signature, feed in (
        ("serving_default", dense),
        ("serve_examples", f"examples={tmp_path / 'examples.npy'}"),
    ):
        outdir = tmp_path / signature
        subprocess.run(
            command
            + ["run", "--dir", str(served_base / "1"), "--tag_set", "serve", "--signature_def", signature]
            + ["--inputs", feed, "--outdir", str(outdir)],
            check=True,
            capture_output=True,
        )
        for name, value in expected.items():
            np.testing.assert_allclose(np.load(outdir / f"{name}.npy"), value, atol=1e-5, err_msg=signature)


def test_a_grpc_predict_request_is_answered_like_a_direct_call(trained_run, served_base):
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        """TF Serving's Predict, on the SavedModel loaded the way it loads one (newest version)."""

        def __init__(self, base):
            newest = max((p for p in base.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
            self.model = tf.saved_model.load(str(newest))

        def Predict(self, request, context):  # noqa: N802 - the gRPC method's name
            signature = self.model.signatures[request.model_spec.signature_name or "serving_default"]
            outputs = signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(served_base), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        examples = _first_records(trained_run, 6)
        inputs, expected = _direct_probabilities(trained_run, examples)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        feeds = {
            "serving_default": {key: value.numpy() for key, value in inputs.items()},
            "serve_examples": {"examples": np.array(examples, dtype=object)},
        }
        for signature, feed in feeds.items():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "mater"
            request.model_spec.signature_name = signature
            for key, value in feed.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            response = stub.Predict(request, timeout=60)
            for name, value in expected.items():
                np.testing.assert_allclose(
                    tf.make_ndarray(response.outputs[name]), value, atol=1e-5, err_msg=signature
                )
            names = json.loads((served_base / "1" / "assets.extra" / "mater_tf.json").read_text())[
                "label_names"
            ]
            assert [n.decode() for n in tf.make_ndarray(response.outputs["class_name"])] == [
                names[i] for i in expected["probabilities"].argmax(-1)
            ]
    finally:
        server.stop(grace=None)


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
        (["predict", "--live", "cam", "--live-format", "v4l3"], "--live-format v4l3: not an input format"),
    ],
)
def test_bad_input_gets_one_clear_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in _error_line(capsys)


def test_a_run_given_as_a_file_or_an_out_that_cannot_be_written(trained_run, tmp_path, capsys, monkeypatch):
    (tmp_path / "config.yaml").write_text("name: x\n")
    for verb in ("evaluate", "export"):
        assert (
            main(
                [verb, "--run", str(tmp_path / "config.yaml"), "--out", "x"][: 3 if verb == "evaluate" else 5]
            )
            == 2
        )
        assert "config.yaml' is a file; give the run's folder" in _error_line(capsys)
    assert main(["export", "--run", str(trained_run), "--out", str(tmp_path / "config.yaml" / "base")]) == 2
    assert "part of that path is a file, not a folder" in _error_line(capsys)
    loaded = []
    monkeypatch.setattr(keras.models, "load_model", lambda *a, **k: loaded.append(a))
    real_write = Path.write_bytes

    def read_only(self, data):
        if self.name == ".write-test":
            raise PermissionError(13, "Permission denied", str(self))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    assert main(["export", "--run", str(trained_run), "--out", str(tmp_path / "locked")]) == 2
    assert "locked: cannot write there (Permission denied)" in _error_line(capsys)
    assert not loaded and not (tmp_path / "locked").exists()  # said before any work


@pytest.mark.parametrize(
    "embedders", [[], ["--audio-embedder", "logmel", "--face-embedder", "vggm:/weights/vgg_m.mat"]]
)
def test_an_export_of_the_synthetic_corpus_is_refused_for_real_media_in_one_line(tmp_path, capsys, embedders):
    """Its records are random vectors: predict asked for embedders, then refused the ones given."""
    export = tmp_path / "export"
    export.mkdir()
    (export / "saved_model.pb").write_bytes(b"")
    (export / "mater_tf.json").write_text(
        json.dumps({"corpus": "synthetic", "audio_embedder": "synthetic-v1", "face_embedder": "synthetic-v1"})
    )
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"RIFF")
    assert (
        main(["predict", str(clip), "--model", str(export), "--out", str(tmp_path / "out"), *embedders]) == 2
    )
    line = _error_line(capsys)
    assert line.endswith(
        f"{export}: trained on the synthetic corpus (random vectors, not embeddings of any media), so it cannot "
        "score real clips; train on records made by mater-tf prepare, or leave out --model to use the built-in model"
    )


def test_a_run_whose_records_were_prepared_again_is_refused(trained_run, tmp_path, capsys):
    """split.json says what the records were when it trained; records remade at another windowing differ."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    split = json.loads((run / "split.json").read_text())
    (run / "split.json").write_text(json.dumps({**split, "window_seconds": 0.25}))
    for argv in (
        ["evaluate", "--run", str(run)],
        ["export", "--run", str(run), "--out", str(tmp_path / "b")],
    ):
        assert main(argv) == 2
        line = _error_line(capsys)
        assert "were prepared again since it trained (window_seconds: 0.25 then, 0.5 now)" in line
        assert "--window-seconds 0.25" in line
    assert not (tmp_path / "b").exists()


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
