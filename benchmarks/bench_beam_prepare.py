"""Clips per second of `mater-tf prepare --runner beam` (DirectRunner, 2 processes) against `mater-tf prepare`.

    python benchmarks/bench_beam_prepare.py [--shared ../shared] [--ravdess-clips 64] [--no-faces]

Both commands run in this process, one after the other, on the same clips and
settings, into fresh folders; each time is the whole command's wall time
(listing, model loading, and for Beam the start of its worker processes), as
a user sees it. Beam also runs on the first clip alone: its fixed start-up
cost, and from it Beam's rate once its workers are up. Workloads: the CREMA-D sample (6 flv videos + 6 mp3, faces
with the FER2013 mini-Xception, 6 x 0.5 s windows) and the first N clips of
RAVDESS-dev-16k (audio only, logmel, 8 x 0.5 s windows). Prints clips/s of
each and the ratio Beam / tf.data; the records of both are checked equal.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def timed(argv: list[str]) -> float:
    from mater_tf.cli.main import main

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"mater-tf {' '.join(argv)} failed ({code})")
    return time.perf_counter() - started


def write_csv(path: Path, clips) -> Path:
    path.write_text("path,label,subject\n" + "".join(f"{c.path},{c.label_name},{c.subject}\n" for c in clips))
    return path


def compare(name: str, clips, options: list[str], work: Path) -> dict:
    """Both runners on `clips`, then Beam on the first clip alone (its fixed start-up cost)."""
    whole, first = write_csv(work / f"{name}.csv", clips), write_csv(work / f"{name}-1.csv", clips[:1])
    seconds = {}
    for runner, csv in (("local", whole), ("beam", whole), ("beam_one_clip", first)):
        out = work / f"{name}-{runner}"
        argv = ["prepare", "--corpus", "csv", "--root", str(csv), "--out", str(out), *options]
        seconds[runner] = timed([*argv, "--runner", runner.split("_")[0], "--workers", "2"])
    manifest = json.loads((work / f"{name}-local" / "manifest.json").read_text())
    same = all(
        (work / f"{name}-local" / shard).read_bytes() == (work / f"{name}-beam" / shard).read_bytes()
        for shard in manifest["shards"]
    )
    count = len(clips)
    rates = {runner: count / seconds[runner] for runner in ("local", "beam")}
    after_start = (count - 1) / max(seconds["beam"] - seconds["beam_one_clip"], 1e-9)
    print(
        f"{name}: {count} clips; tf.data {rates['local']:.2f} clips/s ({seconds['local']:.1f} s), "
        f"Beam DirectRunner x2 processes {rates['beam']:.2f} clips/s ({seconds['beam']:.1f} s); "
        f"ratio Beam / tf.data {rates['beam'] / rates['local']:.2f}; Beam on 1 clip {seconds['beam_one_clip']:.1f} s, "
        f"so {after_start:.2f} clips/s once started; records identical: {same}",
        flush=True,
    )
    return {
        "clips": count,
        "seconds": seconds,
        "clips_per_second": rates,
        "beam_clips_per_second_after_start": after_start,
        "identical": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--ravdess-clips", type=int, default=64, help="RAVDESS-dev-16k clips (0: skip)")
    parser.add_argument("--no-faces", action="store_true", help="skip the CREMA-D run with faces")
    args = parser.parse_args()
    from mater_tf.corpora import list_corpus

    results = {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.no_faces:
            clips, _ = list_corpus("cremad", args.shared / "data" / "CREMA-D")
            face = f"keras:{args.shared / 'weights' / 'fer2013_mini_xception.hdf5'}"
            options = ["--windows", "6", "--face-embedder", face, "--clips-per-shard", "4"]
            results["cremad_faces"] = compare("cremad-faces", clips, options, work)
        if args.ravdess_clips:
            clips, _ = list_corpus("ravdess", args.shared / "data" / "RAVDESS-dev-16k")
            options = ["--modalities", "audio", "--windows", "8", "--clips-per-shard", "16"]
            results["ravdess_audio"] = compare("ravdess-audio", clips[: args.ravdess_clips], options, work)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
