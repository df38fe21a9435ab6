"""Training speed of MATER against the same network built on keras.layers.MultiHeadAttention.

    python benchmarks/bench_training.py [--sizes paper quickstart] [--rounds 6]

For each model size, in one process and on the same arrays:
  * `keras_mha`: MATER with its attention sub-layers replaced by
    `keras.layers.MultiHeadAttention` (the encoder block as it was before
    issue 13): the plain Keras model of the same size, the reference;
  * `mater`: MATER as built by the package (`SelfAttention`), XLA off;
  * `mater_xla`: the same, compiled with `jit_compile=True`.
All start from the same weights (the outputs are compared), are compiled as
the trainer compiles them (Task.compile, op determinism on), and are fit one
epoch at a time in interleaved rounds, so a load shared with other processes
slows every variant alike; the median seconds per step of each are reported
with the ratio against the reference, beside the fastest step and the
process CPU seconds per step (less sensitive to other processes' load). Then the input pipeline alone
(records -> parsed, batched tensors, batch 64, 512-d) in batches per second,
over MATER's training steps per second at paper size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from unittest import mock

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench_core import MODEL_SIZES, bench_pipeline  # noqa: E402  (this script's folder is on sys.path)

CLIPS_PER_EPOCH_BATCHES = 5  # batches per timed epoch: short epochs, many interleaved rounds


def keras_mha_block_class():
    """The encoder block as it was before issue 13: keras.layers.MultiHeadAttention inside."""
    import keras
    from keras import ops

    from mater_tf.layers import EncoderBlock

    class KerasMHAEncoderBlock(EncoderBlock):
        def build(self, inputs_shape, valid_shape=None):
            input_shape = tuple(inputs_shape)
            if self.use_attention:
                self.attention = keras.layers.MultiHeadAttention(
                    num_heads=self.num_heads,
                    key_dim=self.d_model // self.num_heads,
                    dropout=self.dropout,
                    name="self_attention",
                )
                self.attention.build(input_shape, input_shape)
                self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="attention_norm")
                self.attention_norm.build(input_shape)
                self.attention_dropout = keras.layers.Dropout(self.dropout)
            self.ff_inner = keras.layers.Dense(self.ff_dim, activation="relu", name="ff_inner")
            self.ff_inner.build(input_shape)
            self.ff_outer = keras.layers.Dense(self.d_model, name="ff_outer")
            self.ff_outer.build(input_shape[:-1] + (self.ff_dim,))
            self.ff_dropout = keras.layers.Dropout(self.dropout)
            self.ff_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="ff_norm")
            self.ff_norm.build(input_shape)
            self.built = True

        def call(self, inputs, valid, training=None, return_attention_scores=False):
            scores, x = None, inputs
            if self.use_attention:
                keys_present = ops.cast(valid, "bool")[:, None, :]
                attention_mask = ops.broadcast_to(
                    keys_present, (ops.shape(valid)[0], ops.shape(valid)[1], ops.shape(valid)[1])
                )
                attended, scores = self.attention(
                    x, x, attention_mask=attention_mask, return_attention_scores=True, training=training
                )
                x = self.attention_norm(x + self.attention_dropout(attended, training=training))
            x = self.ff_norm(x + self.ff_dropout(self.ff_outer(self.ff_inner(x)), training=training))
            return (x, scores) if return_attention_scores else x

    return KerasMHAEncoderBlock


def make_arrays(size: str, batches: int):
    import numpy as np

    spec = MODEL_SIZES[size]
    rng = np.random.default_rng(0)
    count, windows, dim = batches * spec["batch"], spec["windows"], spec["dim"]
    # Some windows absent, as in real clips (a clip shorter than T windows, a face lost).
    present = np.arange(windows)[None, :] < rng.integers(windows // 2, windows + 1, size=(count, 1))
    inputs = {
        "audio_embedding": rng.normal(size=(count, windows, dim)).astype(np.float32),
        "face_embedding": rng.normal(size=(count, windows, dim)).astype(np.float32),
        "audio_valid": present.astype(np.float32),
        "face_valid": (present & (rng.random((count, windows)) > 0.1)).astype(np.float32),
    }
    labels = rng.integers(0, 8, size=count)
    return inputs, {key: labels for key in ("logits", "audio_logits", "face_logits")}


def bench_size(size: str, rounds: int, determinism: bool) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from mater_tf.config import load_config
    from mater_tf.models import build_model
    from mater_tf.models import mater as mater_module
    from mater_tf.training.task import Task

    spec = MODEL_SIZES[size]
    keras.utils.set_random_seed(0)
    if determinism:
        tf.config.experimental.enable_op_determinism()  # as fit_run trains (Keras then refuses XLA)
    config = load_config("quickstart", spec["overrides"] + [f"train.batch_size={spec['batch']}"])
    inputs, targets = make_arrays(size, CLIPS_PER_EPOCH_BATCHES)
    dims = (config.model, spec["dim"], spec["dim"], 8, spec["windows"])

    models = {"mater": build_model(*dims)}
    with mock.patch.object(mater_module, "EncoderBlock", keras_mha_block_class()):
        models["keras_mha"] = build_model(*dims)
    models["mater_xla"] = build_model(*dims)
    reference_weights = models["mater"].get_weights()
    for name, model in models.items():
        model.set_weights(reference_weights)
        Task(config, None).compile(model, 1, CLIPS_PER_EPOCH_BATCHES)
        model.jit_compile = name.endswith("_xla")  # falls back to False (with a warning) under determinism
    probe = {key: value[:8] for key, value in inputs.items()}
    reference_logits = np.asarray(models["keras_mha"](probe, training=False)["logits"])
    max_difference = {
        name: float(np.abs(np.asarray(model(probe, training=False)["logits"]) - reference_logits).max())
        for name, model in models.items()
    }

    step_seconds = {name: [] for name in models}
    cpu_seconds = {name: [] for name in models}

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    def fit_epoch(name: str) -> None:
        timer = StepTimer()
        timer.seconds = []
        cpu_started = time.process_time()
        models[name].fit(
            inputs, targets, batch_size=spec["batch"], epochs=1, shuffle=False, verbose=0, callbacks=[timer]
        )
        cpu_seconds[name].append((time.process_time() - cpu_started) / len(timer.seconds))
        step_seconds[name].extend(timer.seconds[1:])  # the first step of an epoch also starts the iterator

    for name in models:
        fit_epoch(name)  # trace (and XLA-compile) outside the timing
    step_seconds = {name: [] for name in models}
    cpu_seconds = {name: [] for name in models}
    order = list(models)
    for round_index in range(rounds):
        for name in order if round_index % 2 == 0 else reversed(order):
            fit_epoch(name)
    median = {name: statistics.median(times) for name, times in step_seconds.items()}
    fastest = {name: min(times) for name, times in step_seconds.items()}
    cpu = {name: statistics.median(times) for name, times in cpu_seconds.items()}
    return {
        "model": size,
        "parameters": int(models["mater"].count_params()),
        "batch_size": spec["batch"],
        "op_determinism": determinism,
        "xla_compiled": bool(models["mater_xla"].jit_compile),
        "seconds_per_step": {name: round(value, 4) for name, value in median.items()},
        "fastest_seconds_per_step": {name: round(value, 4) for name, value in fastest.items()},
        "cpu_seconds_per_step": {name: round(value, 4) for name, value in cpu.items()},
        "all_seconds_per_step": {name: [round(t, 4) for t in times] for name, times in step_seconds.items()},
        "speedup_over_keras_mha": {
            name: round(median["keras_mha"] / value, 2)
            for name, value in median.items()
            if name != "keras_mha"
        },
        "fastest_step_speedup_over_keras_mha": {
            name: round(fastest["keras_mha"] / value, 2)
            for name, value in fastest.items()
            if name != "keras_mha"
        },
        "cpu_time_speedup_over_keras_mha": {
            name: round(cpu["keras_mha"] / value, 2) for name, value in cpu.items() if name != "keras_mha"
        },
        "max_logit_difference_to_keras_mha": max_difference,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", choices=sorted(MODEL_SIZES), default=["paper", "quickstart"])
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds of one epoch per variant")
    parser.add_argument(
        "--no-determinism",
        action="store_true",
        help="leave TensorFlow's op determinism off (the trainer turns it on unless XLA is asked for)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    results = {"cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg(), "models": []}
    for size in args.sizes:
        entry = bench_size(size, args.rounds, not args.no_determinism)
        results["models"].append(entry)
        seconds = entry["seconds_per_step"]
        print(
            f"{size:<10} {entry['parameters']:>10,} params  batch {entry['batch_size']}: "
            + ", ".join(f"{name} {value * 1000:.1f} ms/step" for name, value in seconds.items())
            + "; speed-up over keras_mha (median step / fastest step / CPU time per step): "
            + ", ".join(
                f"{name} {value}x / {entry['fastest_step_speedup_over_keras_mha'][name]}x"
                f" / {entry['cpu_time_speedup_over_keras_mha'][name]}x"
                for name, value in entry["speedup_over_keras_mha"].items()
            )
            + f"; max |logit difference| {max(entry['max_logit_difference_to_keras_mha'].values()):.1e}"
            + (
                ""
                if entry["xla_compiled"]
                else " (mater_xla ran without XLA: Keras refuses it under op determinism)"
            ),
            flush=True,
        )
    pipeline = results["input_pipeline"] = bench_pipeline()
    paper = next((entry for entry in results["models"] if entry["model"] == "paper"), None)
    line = (
        f"input pipeline ({pipeline['clips']} clips, 2 x 8 x 512 floats, batch 64): "
        f"{pipeline['first_pass_batches_per_second']} batches/s first pass, "
        f"{pipeline['cached_batches_per_second']} cached"
    )
    if paper:
        steps_per_second = 1.0 / min(
            paper["seconds_per_step"]["mater"], paper["seconds_per_step"]["mater_xla"]
        )
        pipeline["first_pass_over_training_steps"] = round(
            pipeline["first_pass_batches_per_second"] / steps_per_second, 1
        )
        pipeline["cached_over_training_steps"] = round(
            pipeline["cached_batches_per_second"] / steps_per_second, 1
        )
        line += (
            f"; over MATER's {steps_per_second:.2f} training steps/s at paper size: "
            f"{pipeline['first_pass_over_training_steps']}x first pass, {pipeline['cached_over_training_steps']}x cached"
        )
    results["load_average_at_end"] = os.getloadavg()
    print(line)
    print(
        f"load average (1 min) at start {results['load_average_at_start'][0]:.1f}, at end {results['load_average_at_end'][0]:.1f}"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
