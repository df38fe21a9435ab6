"""The reference the learned audio front end is measured against (a figure, not a test).

    python benchmarks/logmel_baseline.py RECORDS [--folds 12] [--l2 1e-2]

RECORDS: shards made by `mater-tf prepare ... --keep-log-mel`. Each clip becomes
one vector: every window's per-band log-mel mean and standard deviation, the
windows side by side (T x 128 numbers; absent windows are zeros). A multinomial
logistic regression
(one Keras Dense softmax layer with an L2 penalty, inputs standardised with the
training split's statistics) is trained on every fold but the test fold and
scored on the test fold's unseen subjects, for every fold in turn: the same
subject-disjoint folds as `mater-tf cv --set cv.validation=false`.

Prints per-fold and mean +- std accuracy; the issue quotes about 49% for this
baseline on all 24 RAVDESS actors in 12 folds.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mater_tf.data import folds, records, schema  # noqa: E402


def clip_features(index: records.RecordIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[clips, T * 128] features, labels and subjects of every clip of the records."""
    dataset = records.make_dataset(
        index, index.subject_ids, ["audio"], 64, training=False, with_context=True, audio_log_mel=True
    )
    features, labels, subjects = [], [], []
    for inputs, _, context in dataset:
        patches = inputs[schema.LOG_MEL_INPUT]  # [batch, T, frames, 64]
        valid = tf.cast(inputs[schema.MODEL_INPUTS["audio"][1]], tf.float32)[..., None]
        per_window = tf.concat([tf.reduce_mean(patches, axis=2), tf.math.reduce_std(patches, axis=2)], -1)
        features.append(tf.reshape(per_window * valid, [tf.shape(patches)[0], -1]).numpy())
        labels.append(context["label"].numpy())
        subjects.append(context["subject"].numpy().astype(str))
    return np.concatenate(features), np.concatenate(labels), np.concatenate(subjects)


def fold_accuracy(x, y, train, test, num_classes, l2, seed) -> float:
    keras.utils.set_random_seed(seed)
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(num_classes, kernel_regularizer=keras.regularizers.l2(l2)),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit((x[train] - mean) / std, y[train], batch_size=len(x), epochs=500, verbose=0)
    predicted = model.predict((x[test] - mean) / std, verbose=0).argmax(-1)
    return float((predicted == y[test]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("records")
    parser.add_argument("--folds", type=int, default=12)
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    started = time.time()
    index = records.index_records(args.records)
    x, y, subjects = clip_features(index)
    fold_subjects = folds.subject_disjoint_folds(index.subject_ids, args.folds)
    accuracies = []
    for fold in range(args.folds):
        split = folds.split_for_fold(fold_subjects, fold, validation=False)
        test = np.isin(subjects, split.test)
        accuracies.append(fold_accuracy(x, y, ~test, test, index.num_classes, args.l2, seed=fold))
        print(f"fold {fold} (test {','.join(split.test)}): {accuracies[-1]:.3f}", flush=True)
    result = {
        "records": args.records,
        "clips": len(y),
        "folds": args.folds,
        "per_fold": accuracies,
        "mean": float(np.mean(accuracies)),
        "std": float(np.std(accuracies, ddof=1)),
        "seconds": round(time.time() - started, 1),
    }
    print(
        f"log-mel mean/std logistic regression: {result['mean']:.3f} +- {result['std']:.3f} ({result['seconds']} s)"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
