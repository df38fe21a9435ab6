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

Beside the SavedModel, `mater_tf.json` records what the inputs must be: the
label names, the windowing and the embedders of the training records, so
that `mater-tf predict` extracts a new clip exactly the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import tensorflow as tf

from mater_tf.data import schema

METADATA_FILE = "mater_tf.json"


def _learns_audio(model) -> bool:
    return getattr(model, "audio_frontend", "none") != "none" and "audio" in model.modalities


def _input_specs(model) -> dict:
    specs = {}
    for modality in model.modalities:
        dim = model.audio_dim if modality == "audio" else model.face_dim
        embedding_name, valid_name = schema.MODEL_INPUTS[modality]
        if modality == "audio" and _learns_audio(model):
            shape = [None, None, model.log_mel_frames, schema.LOG_MEL_BANDS]
            specs[schema.LOG_MEL_INPUT] = tf.TensorSpec(shape, tf.float32, name=schema.LOG_MEL_INPUT)
        else:
            specs[embedding_name] = tf.TensorSpec([None, None, dim], tf.float32, name=embedding_name)
        specs[valid_name] = tf.TensorSpec([None, None], tf.float32, name=valid_name)
    return specs


def export_saved_model(model, out_dir: str | Path, label_names, metadata: dict) -> Path:
    """Writes the SavedModel with both signatures and its metadata file."""
    out_dir = Path(out_dir)
    names = tf.constant(list(label_names))
    specs = _input_specs(model)

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

    def serve_examples(examples):
        log_mel_frames = model.log_mel_frames if _learns_audio(model) else 0
        features = schema.parse_batch(examples, model.audio_dim, model.face_dim, log_mel_frames)
        return predict({name: features[name] for name in specs})

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", predict, input_signature=[specs])
    archive.add_endpoint(
        "serve_examples", serve_examples, input_signature=[tf.TensorSpec([None], tf.string, name="examples")]
    )
    if getattr(model, "_attention_scores", None):
        attention = model.attention_model()

        def serve_attention(inputs):
            return attention(inputs, training=False)

        archive.track(attention)
        archive.add_endpoint("serve_attention", serve_attention, input_signature=[specs])
    archive.write_out(str(out_dir), verbose=False)
    (out_dir / METADATA_FILE).write_text(
        json.dumps({**metadata, "label_names": list(label_names), "inputs": list(specs)}, indent=2) + "\n"
    )
    return out_dir


def read_export_metadata(export_dir: str | Path) -> dict:
    return json.loads((Path(export_dir) / METADATA_FILE).read_text())
