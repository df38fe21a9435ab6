"""How a trained model is evaluated: predictions of a split, and the metrics of every output.

A modality's own output (audio, face) is scored only on the clips where that
modality is present (at least one window): a clip with no face has no face
verdict, so it neither helps nor hurts the face accuracy. The fused output
(AV) is scored on the clips where at least one of the model's modalities is
present: late fusion gives a clip with none all-zero logits (argmax: class
0), no verdict either. So a face-only model's accuracy counts the clips with
a face, as its face branch's does in an AV model. Every metrics entry carries
its `num_clips` (n) and how many clips lacked the modality (for AV: lacked
every modality of the model), `num_clips_without_modality`.

A branch whose modality no training clip has never learned (e.g. the face
branch where every training speaker has audio files only): its output is
chance, so it is not scored (`not_trained` says why), and the fused output
says which modality it averaged in untrained (`untrained_modalities`).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mater_tf.data.records import count_clips, count_clips_with
from mater_tf.reporting.plots import confusion_matrix_png
from mater_tf.training.metrics import classification_metrics

# Model output -> the name used in metrics and reports (paper Table 3: AV, A, V).
OUTPUT_NAMES = {"logits": "av", "audio_logits": "audio", "face_logits": "face"}


def predict_split(model: keras.Model, dataset: tf.data.Dataset) -> dict:
    """Runs the model over a dataset made `with_context` (one pass: each record is read
    and parsed once); returns numpy arrays of the outputs and of the context (label,
    subject, clip_id, `{modality}_present`)."""
    collected: dict = {}
    # Under MultiWorkerMirroredStrategy (a callback during training) predict_on_batch gathers
    # the rows of every worker (twice the batch with 2 workers) in a collective all workers
    # must join; a direct call predicts this worker's batch alone.
    across_workers = isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy)
    for inputs, _, context in dataset:
        outputs = model(inputs, training=False) if across_workers else model.predict_on_batch(inputs)
        batch = {**outputs, **{k: v.numpy() for k, v in context.items()}}
        for key, value in batch.items():
            collected.setdefault(key, []).append(np.asarray(value))
    return {key: np.concatenate(values) for key, values in collected.items()}


def output_metrics(predictions: dict, output: str, label_names) -> dict:
    """Metrics of one output over the clips where it has a verdict: a modality's output where
    that modality is present, the fused output where any of the model's modalities is."""
    labels, scores = predictions["label"], predictions[output]
    name = OUTPUT_NAMES[output]
    if name == "av":
        present = np.zeros(len(labels), bool)
        for modality in ("audio", "face"):
            present |= predictions.get(f"{modality}_present", np.zeros(len(labels), bool)).astype(bool)
    else:
        present = predictions[f"{name}_present"].astype(bool)
    metrics = classification_metrics(labels[present], scores[present].argmax(-1), label_names)
    metrics["num_clips_without_modality"] = int((~present).sum())
    return metrics


def split_metrics(predictions: dict, label_names, untrained=()) -> dict:
    """Metrics of every output (av, audio, face) from `predict_split` arrays; the outputs of
    the `untrained` modalities (no training clip had them) are not scored."""
    metrics = {
        OUTPUT_NAMES[key]: output_metrics(predictions, key, label_names)
        for key in OUTPUT_NAMES
        if key in predictions
    }
    for modality in untrained:
        if modality in metrics:
            without = metrics[modality]["num_clips_without_modality"]
            metrics[modality] = classification_metrics(np.zeros(0), np.zeros(0), label_names)
            metrics[modality].update(
                num_clips_without_modality=without,
                not_trained=f"no training clip has a {modality}: the {modality} branch never learned",
            )
    if untrained and "av" in metrics:
        metrics["av"]["untrained_modalities"] = list(untrained)
    return metrics


def untrained_modalities(task, split) -> list[str]:
    """The model's modalities that no clip of the training subjects has."""
    return [m for m in task.config.model.modalities if not count_clips_with(task.index, split.train, m)]


def evaluate(model: keras.Model, task, split, data_prefix: str = "") -> dict:
    """Test (and validation) metrics of a model on a fold's split, with the protocol stated.

    A split with no test subjects (`cv.test_fold=-1`: every subject trained) has no test
    metrics: `metrics["test"]` is empty.
    """
    label_names = list(task.index.label_names)
    untrained = untrained_modalities(task, split)
    test = predict_split(model, task.build_inputs(split.test, with_context=True)) if split.test else None
    metrics = {
        "experiment": task.config.name,
        "corpus": task.index.corpus,
        "synthetic": bool(data_prefix),
        "label_names": label_names,
        "test_fold": split.test_fold,
        "protocol": protocol(task, split),
        "test_subjects": list(split.test),
        "validation_subjects": list(split.validation),
        "test": split_metrics(test, label_names, untrained) if split.test else {},
    }
    if split.validation:
        validation = predict_split(model, task.build_inputs(split.validation, with_context=True))
        metrics["validation"] = split_metrics(validation, label_names, untrained)
    return metrics


def protocol(task, split) -> dict:
    """Which subjects trained, selected and tested, and how many clips each split has."""
    return {
        "train_subjects": list(split.train),
        "validation_subjects": list(split.validation),
        "test_subjects": list(split.test),
        "train_clips": count_clips(task.index, split.train),
        "validation_clips": count_clips(task.index, split.validation),
        "test_clips": count_clips(task.index, split.test),
        "selection": (
            "best validation loss on the validation subjects"
            if split.validation
            else "none: the last epoch's weights (no validation subjects)"
        ),
    }


def write_test_figures(metrics: dict, label_names, root: Path, logs: Path, data_prefix: str = "") -> None:
    """Test confusion matrices as PNG files and TensorBoard images.

    No test scalar goes to TensorBoard, so its HParams and scalar views
    (where runs are compared and chosen) show training and validation only.
    """
    writer = tf.summary.create_file_writer(str(logs / "test"))
    for name, values in metrics["test"].items():
        title = (
            f"{data_prefix}test fold {metrics['test_fold']}, {name.upper()}, n={values['num_clips']}, "
            + ("no clip scored" if values["accuracy"] is None else f"acc {values['accuracy']:.3f}")
        )
        png = confusion_matrix_png(np.array(values["confusion_matrix"]), label_names, title)
        (root / f"confusion_{name}.png").write_bytes(png)
        with writer.as_default():
            tf.summary.image(f"confusion_matrix/{name}", tf.image.decode_png(png)[None], step=0)
    writer.flush()
