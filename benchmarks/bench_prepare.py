"""Speed of `mater-tf prepare` on the real samples in ../shared/data (figures, not tests).

    python benchmarks/bench_prepare.py [--shared ../shared] [--json OUT.json]

Reports, for the CREMA-D sample (6 flv videos + 6 mp3, faces with the real
FER2013 mini-Xception, 6 x 0.5 s windows) and the RAVDESS sample (17 wavs,
8 x 0.5 s windows, audio only): clips per second, real-time factor (processing
seconds per second of media), and the seconds spent in each stage. Audio is
embedded twice: `logmel` and VGGish (random weights, for its speed only).
Then the face path (frames downscaled to 320 px, batched MTCNN, tracking)
against `MTCNN().detect_faces` called on every full-size frame: time per frame
and face-found rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_prepare(
    shared: Path, corpus: str, root: Path, windows: int, audio_spec: str, face: bool, out: Path
) -> dict:
    from mater_tf.corpora import label_names, list_corpus
    from mater_tf.extraction import build_extractor
    from pipelines.prepare import prepare

    clips, skipped = list_corpus(corpus, root)
    modalities = ["audio", "face"] if face else ["audio"]
    face_spec = f"keras:{shared / 'weights' / 'fer2013_mini_xception.hdf5'}" if face else None
    extractor, info = build_extractor(windows, 0.5, modalities, face_spec, audio_spec)
    started = time.perf_counter()
    manifest = prepare(clips, skipped, extractor, out, corpus, label_names(corpus, clips), info, workers=2)
    elapsed = time.perf_counter() - started
    media_seconds = sum(c["duration"] for c in manifest["clips"].values())
    return {
        "corpus": corpus,
        "audio_embedder": audio_spec.split(":")[0],
        "clips": manifest["num_clips"],
        "failed": manifest["num_failed"],
        "seconds": round(elapsed, 2),
        "clips_per_second": round(manifest["num_clips"] / elapsed, 2),
        "real_time_factor": round(elapsed / media_seconds, 3),
        "seconds_per_stage": manifest["seconds_per_stage"],
        "mean_face_found_rate": manifest["mean_face_found_rate"],
    }


def compare_face_paths(shared: Path) -> dict:
    from mtcnn import MTCNN

    from mater_tf.faces import FaceTracker
    from mater_tf.media import decode_video

    videos = [
        decode_video(p, max_side=10_000)
        for p in sorted((shared / "data" / "CREMA-D" / "VideoFlash").glob("*.flv"))
    ]
    frames = sum(len(v.frames) for v in videos)
    tracker = FaceTracker()
    tracker.track(videos[0].frames[:2])  # build the graphs once
    started = time.perf_counter()
    ours = [tracker.track(v.frames).found for v in videos]
    ours_seconds = time.perf_counter() - started
    detector = MTCNN()
    detector.detect_faces(videos[0].frames[0])
    started = time.perf_counter()
    plain = [[bool(detector.detect_faces(frame)) for frame in v.frames] for v in videos]
    plain_seconds = time.perf_counter() - started
    return {
        "frames": frames,
        "frame_size": list(videos[0].frames.shape[1:3]),
        "ours_ms_per_frame": round(1000 * ours_seconds / frames, 1),
        "ours_found_rate": round(sum(f.sum() for f in ours) / frames, 4),
        "plain_ms_per_frame": round(1000 * plain_seconds / frames, 1),
        "plain_found_rate": round(sum(sum(f) for f in plain) / frames, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--json")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mater_tf.features.vggish import build_vggish

    results = {"runs": []}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        vggish = folder / "random_vggish.weights.h5"
        build_vggish("conv4_2").save_weights(vggish)  # random weights: for timing only
        for audio_spec in ("logmel", f"vggish:{vggish}"):
            tag = audio_spec.split(":")[0]
            results["runs"].append(
                run_prepare(
                    args.shared,
                    "cremad",
                    args.shared / "data" / "CREMA-D",
                    6,
                    audio_spec,
                    True,
                    folder / f"c-{tag}",
                )
            )
            results["runs"].append(
                run_prepare(
                    args.shared,
                    "ravdess",
                    args.shared / "data" / "RAVDESS",
                    8,
                    audio_spec,
                    False,
                    folder / f"r-{tag}",
                )
            )
    results["face_paths"] = compare_face_paths(args.shared)
    for run in results["runs"]:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in run["seconds_per_stage"].items() if v)
        print(
            f"{run['corpus']:<8} audio={run['audio_embedder']:<7} {run['clips']:>3} clips  {run['clips_per_second']:>6.2f} clips/s  "
            f"RTF {run['real_time_factor']:.3f}  stages (s): {stages}"
        )
    face = results["face_paths"]
    print(
        f"faces on {face['frames']} CREMA-D frames {face['frame_size']}: ours {face['ours_ms_per_frame']} ms/frame, "
        f"found {face['ours_found_rate']:.1%}; MTCNN().detect_faces per full frame {face['plain_ms_per_frame']} ms/frame, "
        f"found {face['plain_found_rate']:.1%}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
