"""Speed and memory of the core on this machine (figures, not tests).

    python benchmarks/bench_core.py [--steps 30] [--json OUT.json]

Reports, each model size in its own process so peak memory is its own:
  * training steps per second and peak resident memory for the paper-sized
    model (d_model 512, 6 layers, 8 heads, ff 2048, 8 windows, 512-d
    embeddings, batch 64) and for the quickstart model;
  * the input pipeline alone (records -> parsed, batched tensors) in batches
    per second, first pass (read + parse + cache) and cached passes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODEL_SIZES = {
    "paper": {
        "overrides": ["model.d_model=512", "model.num_layers=6", "model.num_heads=8", "model.ff_dim=2048"],
        "windows": 8,
        "dim": 512,
        "batch": 64,
    },
    "quickstart": {"overrides": [], "windows": 8, "dim": 32, "batch": 32},
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_model(size: str, steps: int) -> dict:
    """Runs in a child process: builds, compiles and trains one model size."""
    import numpy as np
    import tensorflow as tf

    from mater_tf.config import load_config
    from mater_tf.models import build_model
    from mater_tf.training.task import Task

    spec = MODEL_SIZES[size]
    rss_after_import = peak_rss_mb()
    config = load_config("quickstart", spec["overrides"] + [f"train.batch_size={spec['batch']}"])
    model = build_model(config.model, spec["dim"], spec["dim"], 8, spec["windows"])
    Task(config, None).compile(model, 1, steps)
    rng = np.random.default_rng(0)
    batch, windows, dim = spec["batch"], spec["windows"], spec["dim"]
    inputs = {
        "audio_embedding": rng.normal(size=(batch, windows, dim)).astype(np.float32),
        "face_embedding": rng.normal(size=(batch, windows, dim)).astype(np.float32),
        "audio_valid": np.ones((batch, windows), np.float32),
        "face_valid": np.ones((batch, windows), np.float32),
    }
    labels = rng.integers(0, 8, size=batch)
    targets = {key: labels for key in ("logits", "audio_logits", "face_logits")}
    dataset = tf.data.Dataset.from_tensors((inputs, targets)).repeat()
    model.fit(dataset, steps_per_epoch=5, epochs=1, verbose=0)  # trace and warm up
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    elapsed = time.perf_counter() - started
    return {
        "model": size,
        "parameters": int(model.count_params()),
        "batch_size": batch,
        "windows": windows,
        "embedding_dim": dim,
        "steps_per_second": round(steps / elapsed, 2),
        "clips_per_second": round(steps * batch / elapsed, 1),
        "peak_rss_mb": round(peak_rss_mb(), 0),
        "rss_after_tensorflow_import_mb": round(rss_after_import, 0),
    }


def bench_pipeline(passes: int = 3) -> dict:
    from mater_tf.config import SyntheticConfig
    from mater_tf.data import records, synthetic

    with tempfile.TemporaryDirectory() as folder:
        corpus = SyntheticConfig(audio_dim=512, face_dim=512)
        synthetic.write_corpus(corpus, folder)
        index = records.index_records(folder)
        dataset = records.make_dataset(index, index.subject_ids, ["audio", "face"], 64, training=True)
        rates = []
        for _ in range(passes):
            started = time.perf_counter()
            count = sum(1 for _ in dataset)
            rates.append(count / (time.perf_counter() - started))
    return {
        "clips": len(index.clip_ids),
        "embedding_dim": 512,
        "windows": corpus.num_windows,
        "batch_size": 64,
        "first_pass_batches_per_second": round(rates[0], 1),
        "cached_batches_per_second": round(max(rates[1:]), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per model")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--child", choices=sorted(MODEL_SIZES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(bench_model(args.child, args.steps)))
        return 0
    results = {"cpu_count": os.cpu_count(), "models": []}
    for size in MODEL_SIZES:
        output = subprocess.run(
            [sys.executable, __file__, "--child", size, "--steps", str(args.steps)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results["models"].append(json.loads(output.strip().splitlines()[-1]))
    results["input_pipeline"] = bench_pipeline()
    for entry in results["models"]:
        print(
            f"{entry['model']:<11} {entry['parameters']:>10,} params  batch {entry['batch_size']:>3}  "
            f"{entry['steps_per_second']:>7.2f} steps/s  {entry['clips_per_second']:>8.1f} clips/s  "
            f"peak RSS {entry['peak_rss_mb']:.0f} MB (TensorFlow alone {entry['rss_after_tensorflow_import_mb']:.0f} MB)"
        )
    pipeline = results["input_pipeline"]
    print(
        f"input pipeline ({pipeline['clips']} clips, 2 x {pipeline['windows']} x 512 floats each, batch 64): "
        f"{pipeline['first_pass_batches_per_second']} batches/s first pass, "
        f"{pipeline['cached_batches_per_second']} batches/s cached"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
