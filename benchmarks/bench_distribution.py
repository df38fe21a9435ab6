"""Training steps per second: 2 workers (train.distribution=multi_worker) against one.

    python benchmarks/bench_distribution.py [--epochs 4] [--rounds 2] [--set model.d_model=256 ...]

The quickstart experiment (its model, batch 32 = the global batch in both
cases) on its synthetic corpus, written once; no validation split, so only
training steps are timed. Each variant runs in fresh processes: `one` is a
single process without distribution (Keras fit); `two` is two processes on
127.0.0.1 joined by TF_CONFIG under MultiWorkerMirroredStrategy (each computes
half of every batch, then the gradients are all-reduced). The first epoch
(tracing, joining the cluster) is not timed; steps per second are taken from
the batch-end times of the later epochs (for `two`, the chief's). Rounds
alternate one / two so that a load shared with other processes slows both
alike; the median of each is reported with the ratio two / one.

On one machine the two workers share its cores (and its memory bus) with each
other: this measures the cost of the collective step, not the gain of a second
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]


def overrides(records: str, epochs: int, setting: str, extra=()) -> list[str]:
    return [
        *extra,
        f"data.source={records}",
        "cv.validation=false",
        "train.early_stopping_patience=0",
        f"train.epochs={epochs}",
        f"train.distribution={setting}",
    ]


def measure(records: str, epochs: int, setting: str, extra=()) -> dict:
    """Trains in this process (a worker when setting is multi_worker); its timed steps/s."""
    from mater_tf.config import load_config
    from mater_tf.training import distribution

    config = load_config("quickstart", overrides(records, epochs, setting, extra))
    strategy = distribution.strategy_for(config)  # before any TensorFlow op
    import contextlib

    import keras

    from mater_tf.training import experiment_data, multi_worker_fit
    from mater_tf.training import task as task_module

    class StepTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times: list[tuple[int, float]] = []

        def on_train_batch_end(self, batch, logs=None):
            self.times.append((self.epoch, time.perf_counter()))

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    index = experiment_data.index_for(config, records)
    split = experiment_data.make_split(config, index)
    keras.utils.set_random_seed(0)
    task = task_module.Task(config, index)
    steps = task.steps_per_epoch(split.train)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = task.build_model(task.build_inputs(split.train))
        task.compile(model, epochs, steps)
    timer = StepTimes()
    train = task.build_inputs(split.train, training=True, epochs=(0, epochs))
    if distribution.is_multi_worker(strategy):
        multi_worker_fit.fit_across_workers(
            model,
            strategy,
            train,
            None,
            epochs=epochs,
            initial_epoch=0,
            steps_per_epoch=steps,
            validation_steps=0,
            callbacks=[timer],
            verbose=0,
        )
    else:
        model.fit(train, epochs=epochs, steps_per_epoch=steps, shuffle=False, callbacks=[timer], verbose=0)
    timed = [t for epoch, t in timer.times if epoch >= 1]
    return {"steps_per_second": (len(timed) - 1) / (timed[-1] - timed[0]), "steps_per_epoch": steps}


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_processes(records: str, epochs: int, workers: int, extra=()) -> dict:
    """One variant in fresh processes; the chief's (or the single process's) measure."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    processes = []
    for index in range(workers):
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        )
        setting = "none"
        if workers > 1:
            setting = "multi_worker"
            env["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
            )
        command = [
            sys.executable,
            __file__,
            "--measure",
            records,
            "--epochs",
            str(epochs),
            "--setting",
            setting,
            *[a for o in extra for a in ("--set", o)],
        ]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
    outputs = [process.communicate()[0] for process in processes]
    for process, output in zip(processes, outputs):
        if process.returncode:
            raise SystemExit(f"a worker failed (exit {process.returncode}):\n{output}")
    return json.loads(outputs[0].strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is not timed")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="a quickstart override (model size)"
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--setting", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.epochs, args.setting, args.overrides)), flush=True)
        return
    from mater_tf.config import load_config
    from mater_tf.data import synthetic

    with tempfile.TemporaryDirectory() as scratch:
        records = str(
            synthetic.write_corpus(load_config("quickstart").data.synthetic, Path(scratch) / "data")
        )
        results: dict = {"one": [], "two": []}
        for _ in range(args.rounds):
            for name, workers in (("one", 1), ("two", 2)):
                measured = run_processes(records, args.epochs, workers, args.overrides)
                results[name].append(measured["steps_per_second"])
                print(f"{name}: {measured['steps_per_second']:.2f} steps/s", flush=True)
    one, two = statistics.median(results["one"]), statistics.median(results["two"])
    sizes = " ".join(args.overrides) or "its own sizes"
    print(
        f"cores: {os.cpu_count()}; quickstart ({sizes}), global batch 32, {measured['steps_per_epoch']} steps/epoch"
    )
    print(f"one worker : {one:.2f} steps/s (median of {args.rounds})")
    print(f"two workers: {two:.2f} steps/s (median of {args.rounds}; 2 processes sharing this machine)")
    print(f"ratio two / one: {two / one:.2f}")


if __name__ == "__main__":
    main()
