"""Speed of `mater-tf prepare` on the real CREMA-D sample against the decode-only floor (figures, not tests).

    python benchmarks/bench_prepare.py [--shared ../shared] [--detect-every 1 5] [--detect-side 320]
                                       [--rounds 1] [--json OUT.json]

The CREMA-D sample in ../shared/data (6 flv videos + 6 mp3, 28 s of media) is prepared with
faces (the real FER2013 mini-Xception) and log-mel audio, 6 x 0.5 s windows, 2 workers, once per
face-detection setting (`--detect-every` K at `--detect-side` px; K = 1 is the detector on every
frame, the way prepare worked before detection every K-th frame), in interleaved rounds after a
warm-up, beside the floor: only decoding every clip's audio and video packets with PyAV (no
resampling, no pixel conversion). Reported per setting (median round):

* real-time factor: prepare's wall seconds per second of media (goal <= 0.25 on 2 cores);
* ratio to the decode-only floor (goal within 5x), in wall seconds and in CPU seconds (the
  process's, all threads: on a shared machine the work itself);
* seconds per stage (summed over clips; decoding runs in tf.data workers beside the rest);
* face-found rate: share of the frames with the face found (goal >= 99%);
* face detector runs: share of the frames the whole detector ran on;
* accuracy cost: cosine between each face window's embedding and the same window's with
  detection in every frame (min / mean over the windows present in both), and windows present
  in one run only.

The RAVDESS sample (17 wavs, audio only) is prepared once for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def decode_floor(paths) -> tuple[float, float]:
    """Wall and CPU seconds to decode every audio and video packet of the clips with PyAV, nothing else."""
    import av

    started, cpu_started = time.perf_counter(), time.process_time()
    for path in paths:
        with av.open(str(path)) as container:
            streams = [*container.streams.video, *container.streams.audio]
            for _ in container.decode(*streams):
                pass
    return time.perf_counter() - started, time.process_time() - cpu_started


def face_windows(out: Path, face_dim: int) -> dict:
    """clip id -> (face embeddings [T, D], face valid [T]) from a prepare run's shards."""
    import numpy as np
    import tensorflow as tf

    from mater_tf.data import schema

    manifest = json.loads((out / "manifest.json").read_text())
    windows = {}
    for shard in manifest["shards"]:
        for serialized in tf.data.TFRecordDataset(str(out / shard)):
            parsed = schema.parse_serialized(serialized, 128, face_dim)
            windows[parsed["clip_id"].numpy().decode()] = (
                np.asarray(parsed["face_embedding"]),
                np.asarray(parsed["face_valid"]) > 0,
            )
    return windows


def cosines(reference: dict, other: dict) -> tuple[list[float], int]:
    """Cosines of the face windows present in both runs, and the windows present in one only."""
    import numpy as np

    values, one_only = [], 0
    for clip_id, (embeddings, valid) in reference.items():
        other_embeddings, other_valid = other[clip_id]
        one_only += int((valid != other_valid).sum())
        for window in np.flatnonzero(valid & other_valid):
            values.append(float(np.dot(embeddings[window], other_embeddings[window])))  # l2-normalised
    return values, one_only


def run_prepare(
    shared: Path, corpus: str, root: Path, windows: int, face: bool, out: Path, **detection
) -> dict:
    from mater_tf.corpora import label_names, list_corpus
    from mater_tf.data.extraction import build_extractor
    from pipelines.prepare import prepare

    clips, skipped = list_corpus(corpus, root)
    modalities = ["audio", "face"] if face else ["audio"]
    face_spec = f"keras:{shared / 'weights' / 'fer2013_mini_xception.hdf5'}" if face else None
    extractor, info = build_extractor(windows, 0.5, modalities, face_spec, "logmel", **detection)
    frames = {"all": 0, "detected": 0}
    if extractor.tracker is not None:  # counts the frames the whole detector runs on
        track = extractor.tracker.track

        def counting_track(video_frames, *args, **kwargs):
            result = track(video_frames, *args, **kwargs)
            frames["all"] += len(result.found)
            frames["detected"] += int(result.detected.sum())
            return result

        extractor.tracker.track = counting_track
    started, cpu_started = time.perf_counter(), time.process_time()
    manifest = prepare(clips, skipped, extractor, out, corpus, label_names(corpus, clips), info, workers=2)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    media_seconds = sum(c["duration"] for c in manifest["clips"].values())
    video = [c for c in manifest["clips"].values() if c["frames"]]
    found = sum(c["face_found_rate"] * c["frames"] for c in video)
    return {
        "corpus": corpus,
        **detection,
        "clips": manifest["num_clips"],
        "failed": manifest["num_failed"],
        "media_seconds": round(media_seconds, 2),
        "seconds": round(elapsed, 2),
        "cpu_seconds": round(cpu, 2),
        "real_time_factor": round(elapsed / media_seconds, 3),
        "seconds_per_stage": manifest["seconds_per_stage"],
        "frames": sum(c["frames"] for c in video),
        "face_found_rate": round(found / max(1, sum(c["frames"] for c in video)), 4) if video else None,
        "detector_share": round(frames["detected"] / frames["all"], 3) if frames["all"] else None,
        "face_dim": extractor.face_dim,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--detect-every", type=int, nargs="+", default=[1, 5], help="K values (1 first)")
    parser.add_argument("--detect-side", type=int, nargs="+", default=[320], help="MTCNN frame sizes, px")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (median reported)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    cremad = args.shared / "data" / "CREMA-D"
    paths = sorted(p for p in cremad.rglob("*") if p.suffix in (".flv", ".mp3"))
    settings = [(every, side) for side in args.detect_side for every in args.detect_every]
    reference = (1, args.detect_side[0])
    if reference not in settings:
        settings.insert(0, reference)
    print(f"load average before: {os.getloadavg()[0]:.2f} (2-core machine)", flush=True)
    runs = {setting: [] for setting in settings}
    floors = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        run_prepare(args.shared, "cremad", cremad, 6, True, folder / "warm-up", detect_every=5)
        decode_floor(paths)
        for round_index in range(args.rounds):
            floors.append(decode_floor(paths))
            for every, side in settings:
                out = folder / f"c-{every}-{side}-{round_index}"
                runs[every, side].append(
                    run_prepare(
                        args.shared, "cremad", cremad, 6, True, out, detect_every=every, detect_side=side
                    )
                )
                runs[every, side][-1]["out"] = out
        floor = statistics.median(wall for wall, _ in floors)
        floor_cpu = statistics.median(cpu for _, cpu in floors)
        face_dim = runs[reference][0]["face_dim"]
        reference_windows = face_windows(runs[reference][0]["out"], face_dim)
        results = {"decode_floor_seconds": round(floor, 3), "decode_floor_cpu_seconds": round(floor_cpu, 3)}
        results["settings"] = []
        for setting in settings:
            median = sorted(runs[setting], key=lambda run: run["seconds"])[len(runs[setting]) // 2]
            values, one_only = cosines(reference_windows, face_windows(median.pop("out"), face_dim))
            for run in runs[setting]:
                run.pop("out", None)
            median["over_decode_floor"] = round(median["seconds"] / floor, 1)
            median["cpu_over_decode_floor_cpu"] = round(median["cpu_seconds"] / floor_cpu, 1)
            median["cosine_min"] = round(min(values), 4)
            median["cosine_mean"] = round(statistics.fmean(values), 4)
            median["windows_in_one_run_only"] = one_only
            median["round_seconds"] = [run["seconds"] for run in runs[setting]]
            results["settings"].append(median)
        ravdess = run_prepare(
            args.shared, "ravdess", args.shared / "data" / "RAVDESS", 8, False, folder / "r"
        )
    results["ravdess_audio_only"] = ravdess
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    media = results["settings"][0]["media_seconds"]
    print(
        f"CREMA-D sample: {len(paths)} clips, {media} s of media; decode-only floor (PyAV) {floor:.2f} s "
        f"(RTF {floor / media:.3f}; CPU {floor_cpu:.2f} s)"
    )
    for run in results["settings"]:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in run["seconds_per_stage"].items() if v >= 0.005)
        print(
            f"  detect every {run['detect_every']} at {run['detect_side']} px: {run['seconds']:.2f} s, "
            f"RTF {run['real_time_factor']:.3f}, {run['over_decode_floor']}x the floor (CPU {run['cpu_seconds']:.1f} s, "
            f"{run['cpu_over_decode_floor_cpu']}x the floor's); face found in "
            f"{run['face_found_rate']:.1%} of {run['frames']} frames (detector on {run['detector_share']:.0%}); "
            f"window cosine to every-frame min {run['cosine_min']:.4f} mean {run['cosine_mean']:.4f}, "
            f"{run['windows_in_one_run_only']} windows in one run only; stages (s): {stages}"
        )
    print(
        f"RAVDESS sample, audio only (logmel): {ravdess['clips']} clips, RTF {ravdess['real_time_factor']:.3f}"
    )
    print(f"load average after: {results['load_average_after']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
