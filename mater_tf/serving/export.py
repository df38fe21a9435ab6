"""SavedModel export for serving (TF Serving, `tf.saved_model.load`).

Two signatures:

* `serving_default`: the window embeddings and validity masks of each
  modality the model uses (`audio_embedding` [batch, T, D_a], `audio_valid`
  [batch, T], `face_embedding`, `face_valid`) -> `probabilities` (fused),
  `{modality}_probabilities`, `class_id` and `class_name`.
* `serve_examples`: `examples`, a [batch] string tensor of serialized
  SequenceExamples of the data contract -> the same outputs.
* `serve_attention` (models with attention): the same inputs ->
  `{modality}_attention_{layer}` [batch, heads, T, T].

`mater_tf.json` records what the inputs must be: the label names, the
windowing and the embedders of the training records, so that `mater-tf
predict` extracts a new clip exactly the same way.

Two layouts:

* flat (`export_saved_model`, a run's `export/`): the SavedModel with
  `mater_tf.json` beside it;
* TF Serving's (`export_serving_version`, `mater-tf export`): a model base
  folder of numbered versions, `BASE/<version>/` holding the SavedModel and
  in `assets.extra/` (TF Serving's folder for files beside the model)
  `mater_tf.json` and `tf_serving_warmup_requests`, a TFRecord of
  `PredictionLog`s that TF Serving replays when it loads the version (one
  `PredictRequest` per signature, built from real records).
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import tensorflow as tf

from mater_tf.config.model import learns_audio_frontend
from mater_tf.data import schema

METADATA_FILE = "mater_tf.json"
EXTRA_ASSETS = "assets.extra"  # TF Serving's folder for files beside the SavedModel
WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_CLIPS = 4  # records per warmup request: a batch, as clients send


def _learns_audio(model) -> bool:
    return learns_audio_frontend(getattr(model, "audio_frontend", "none"), model.modalities)


def reads_voice_descriptors(model) -> bool:
    """Whether the model's audio branch reads the voice descriptors (its utterance functionals)."""
    return bool(getattr(model, "utterance_functionals", False)) and _learns_audio(model)


def input_specs(model) -> dict:
    """The serving inputs. The window count is free unless the head reads the windows side
    by side (`window_pooling="concat"`): that head takes exactly the trained count."""
    specs = {}
    windows = model.num_windows if getattr(model, "window_pooling", "mean") == "concat" else None
    for modality in model.modalities:
        dim = model.audio_dim if modality == "audio" else model.face_dim
        embedding_name, valid_name = schema.MODEL_INPUTS[modality]
        if modality == "audio" and _learns_audio(model):
            shape = [None, windows, model.log_mel_frames, schema.LOG_MEL_BANDS]
            specs[schema.LOG_MEL_INPUT] = tf.TensorSpec(shape, tf.float32, name=schema.LOG_MEL_INPUT)
            if reads_voice_descriptors(model):
                shape = [None, windows, model.log_mel_frames, schema.VOICE_DESCRIPTORS]
                name = schema.VOICE_DESCRIPTORS_INPUT
                specs[name] = tf.TensorSpec(shape, tf.float32, name=name)
        else:
            specs[embedding_name] = tf.TensorSpec([None, windows, dim], tf.float32, name=embedding_name)
        specs[valid_name] = tf.TensorSpec([None, windows], tf.float32, name=valid_name)
    return specs


def serving_function(model, label_names):
    """`serving_default`'s computation: the model's inputs -> `probabilities` (fused),
    `{modality}_probabilities`, `class_id` and `class_name`."""
    names = tf.constant(list(label_names))

    def predict(inputs):
        outputs = model(inputs, training=False)
        probabilities = tf.nn.softmax(outputs["logits"], axis=-1)
        result = {
            "probabilities": probabilities,
            "class_id": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
        }
        result["class_name"] = tf.gather(names, result["class_id"])
        for modality in model.modalities:
            result[f"{modality}_probabilities"] = tf.nn.softmax(outputs[f"{modality}_logits"], axis=-1)
        return result

    return predict


def _write_saved_model(model, out_dir: Path, label_names) -> dict:
    """Writes the SavedModel; returns {signature name: its inputs as a function of parsed records}."""
    specs = input_specs(model)
    log_mel_frames = model.log_mel_frames if _learns_audio(model) else 0
    predict = serving_function(model, label_names)

    def model_inputs(examples):
        features = schema.parse_batch(
            examples, model.audio_dim, model.face_dim, log_mel_frames, reads_voice_descriptors(model)
        )
        return {name: features[name] for name in specs}

    def serve_examples(examples):
        return predict(model_inputs(examples))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", predict, input_signature=[specs])
    archive.add_endpoint(
        "serve_examples", serve_examples, input_signature=[tf.TensorSpec([None], tf.string, name="examples")]
    )
    signatures = {"serving_default": model_inputs, "serve_examples": lambda examples: {"examples": examples}}
    if getattr(model, "_attention_scores", None):
        attention = model.attention_model()

        def serve_attention(inputs):
            return attention(inputs, training=False)

        archive.track(attention)
        archive.add_endpoint("serve_attention", serve_attention, input_signature=[specs])
        signatures["serve_attention"] = model_inputs
    archive.write_out(str(out_dir), verbose=False)
    return signatures


def _metadata_json(model, label_names, metadata: dict) -> str:
    inputs = list(input_specs(model))
    return json.dumps({**metadata, "label_names": list(label_names), "inputs": inputs}, indent=2) + "\n"


def export_saved_model(model, out_dir: str | Path, label_names, metadata: dict) -> Path:
    """Writes the SavedModel with its signatures and `mater_tf.json` beside it (the flat layout)."""
    out_dir = Path(out_dir)
    _write_saved_model(model, out_dir, label_names)
    (out_dir / METADATA_FILE).write_text(_metadata_json(model, label_names, metadata))
    return out_dir


def export_serving_version(
    model, version_dir: str | Path, label_names, metadata: dict, examples: list[bytes]
) -> Path:
    """Writes one version of a TF Serving model base: the SavedModel, and in `assets.extra/`
    `mater_tf.json` and the warmup requests built from `examples` (serialized records)."""
    version_dir = Path(version_dir)
    signatures = _write_saved_model(model, version_dir, label_names)
    extra = version_dir / EXTRA_ASSETS
    extra.mkdir(parents=True, exist_ok=True)
    (extra / METADATA_FILE).write_text(_metadata_json(model, label_names, metadata))
    with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
        for request in warmup_requests(signatures, examples):
            writer.write(request)
    return version_dir


def warmup_requests(signatures: dict, examples: list[bytes]) -> list[bytes]:
    """One serialized `PredictionLog` per signature, its `PredictRequest` holding the same clips."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    serialized = tf.constant(list(examples), dtype=tf.string)
    logs = []
    for name, inputs_of in signatures.items():
        request = predict_pb2.PredictRequest()
        request.model_spec.signature_name = name
        for key, value in inputs_of(serialized).items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        logs.append(log.SerializeToString())
    return logs


def metadata_path(export_dir: str | Path) -> Path:
    """`mater_tf.json` of an export in either layout (TF Serving's `assets.extra/`, or flat)."""
    export_dir = Path(export_dir)
    served = export_dir / EXTRA_ASSETS / METADATA_FILE
    return served if served.is_file() else export_dir / METADATA_FILE


def read_export_metadata(export_dir: str | Path) -> dict:
    return json.loads(metadata_path(export_dir).read_text())
