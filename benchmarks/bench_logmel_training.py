"""Training speed of a learned log-mel recipe on this machine (figures, not a test).

    python benchmarks/bench_logmel_training.py RECORDS \
        [--experiment experiments/logmel/ravdess_audio.yaml] [--epochs 3] [--set KEY=VALUE ...]

RECORDS: shards made by the recipe header's `mater-tf prepare` command. The benchmark
builds the recipe exactly as `mater-tf train` does (the same Task, input pipeline,
model and optimizer) on the training split of `cv.test_fold`, then times, in one process:
  * the floor: one cached pass of the training input pipeline alone;
  * training: `--epochs` epochs of `model.fit` on the same pipeline (the first epoch,
    which traces and compiles, is reported apart).
It prints seconds per epoch, training clips per second, the ratio of training time to
the pipeline floor, and the minutes one fold takes at the recipe's epochs, measured
and scaled to 840 training clips (14 RAVDESS actors: an 8-fold cv over actors 01-16).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from mater_tf.config import load_config  # noqa: E402
from mater_tf.data import records  # noqa: E402
from mater_tf.training.experiment_data import index_for, make_split  # noqa: E402
from mater_tf.training.task import Task  # noqa: E402

REFERENCE_CLIPS = 840


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ends = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("records")
    parser.add_argument("--experiment", default="experiments/logmel/ravdess_audio.yaml")
    parser.add_argument(
        "--epochs", type=int, default=3, help="epochs to time (>= 2; the first is reported apart)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error(
            "--epochs must be at least 2 (the first epoch traces and compiles; it is reported apart)"
        )
    config = load_config(args.experiment, [f"data.source={args.records}", *args.set])
    index = index_for(config, args.records)
    split = make_split(config, index)
    task = Task(config, index)
    clips = records.count_clips(index, split.train)
    steps = task.steps_per_epoch(split.train)

    pipeline = task.build_inputs(split.train, training=True, epochs=(0, 2))
    iterator = iter(pipeline)
    for _ in range(steps):  # first epoch: read, parse, fill the cache
        next(iterator)
    started = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    floor = time.perf_counter() - started

    keras.utils.set_random_seed(config.train.seed)
    model = task.build_model(task.build_inputs(split.train))
    task.compile(model, config.train.epochs, steps)
    timer = EpochTimer()
    model.fit(
        task.build_inputs(split.train, training=True, epochs=(0, args.epochs)),
        epochs=args.epochs,
        steps_per_epoch=steps,
        callbacks=[timer],
        verbose=0,
    )
    epoch_times = [b - a for a, b in zip(timer.ends, timer.ends[1:])]
    per_epoch = sum(epoch_times[1:]) / len(epoch_times[1:])
    figures = {
        "experiment": config.name,
        "train_clips": clips,
        "batch_size": config.train.batch_size,
        "epochs_in_recipe": config.train.epochs,
        "first_epoch_s": round(epoch_times[0], 2),
        "seconds_per_epoch": round(per_epoch, 2),
        "train_clips_per_s": round(clips / per_epoch, 1),
        "pipeline_epoch_s": round(floor, 3),
        "training_over_pipeline": round(per_epoch / floor, 1),
        "fold_minutes_measured_clips": round(config.train.epochs * per_epoch / 60, 1),
        f"fold_minutes_at_{REFERENCE_CLIPS}_clips": round(
            config.train.epochs * per_epoch * REFERENCE_CLIPS / clips / 60, 1
        ),
    }
    for key, value in figures.items():
        print(f"{key:32s} {value}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
