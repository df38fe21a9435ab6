"""Latency and real-time factor of `mater-tf predict`, beside decoding the same file alone
(figures, not tests).

    python benchmarks/bench_predict.py [--shared ../shared] [--latency-seconds 3] [--detect-every 1 5]
                                       [--warm-runs 5] [--repeats 1 3] [--json OUT.json]

Latency (issue 13, goal: <= 1.0 s warm on 2 cores): a 3 s audio-visual clip cut from the CREMA-D
sample videos, predicted in a fresh process per face-detection setting (`--detect-every` K, as
the model's training records were prepared; K = 1: every frame, as before). Reported separately:
`import tensorflow` at process start, loading (the SavedModel; the embedders), the first predict
(MTCNN and the face model built and traced) and the warm latency (median of `--warm-runs` more
predicts of the same file, wall and CPU seconds: on a shared machine the CPU seconds are the
work itself), with the clip's emotion each time.

Real-time factor (`--repeats`; none: skipped):

The six real CREMA-D sample videos (480x360, mp3 audio) are joined end to end at 30 frames/s,
`repeats` times over, into an mp4 in a temporary folder. For each length, in a fresh process
(so that the peak memory is that length's own):

* decode only: the same streaming pass predict makes (`mater_tf.media.stream.stream_windows`:
  audio resampled to 16 kHz, every frame converted to RGB), nothing else;
* predict: `Predictor.predict` on the file with a small untrained MATER (audio + face,
  8 x 0.5 s windows) whose inputs come from the real embedders: log-mel statistics for the voice,
  MTCNN + the FER2013 mini-Xception for the face (these, not the small model, are the cost).

Reported: media seconds, wall seconds, real-time factor (wall / media seconds) of each, their
ratio, and the peak resident memory. With streaming decode the time grows with the length and
the memory does not.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
FPS = 30


def join_videos(paths, out: Path, repeats: int, max_seconds: float | None = None) -> float:
    """The clips one after the other, `repeats` times (cut at `max_seconds`), as one mp4; returns its
    length in seconds."""
    import av
    import numpy as np

    from mater_tf.media import decode_audio, decode_video

    pieces = []
    for path in paths:
        audio, video = decode_audio(path), decode_video(path, 640)
        count = int(len(audio) / 16000 * FPS)
        frames = [
            video.frames[max(0, np.searchsorted(video.times, k / FPS, "right") - 1)] for k in range(count)
        ]
        pieces.append((audio[: round(count / FPS * 16000)], frames))
    pieces = pieces * repeats
    if max_seconds is not None:
        frames = [frame for _, clip_frames in pieces for frame in clip_frames][: round(max_seconds * FPS)]
        audio = np.concatenate([audio for audio, _ in pieces])[: round(len(frames) / FPS * 16000)]
        pieces = [(audio, frames)]
    height, width = pieces[0][1][0].shape[:2]
    with av.open(str(out), "w") as container:
        video_stream = container.add_stream("mpeg4", rate=FPS)
        video_stream.width, video_stream.height, video_stream.pix_fmt = width, height, "yuv420p"
        video_stream.bit_rate = 1_500_000
        audio_stream = container.add_stream("aac", rate=16000)
        audio_stream.layout = "mono"
        for _, frames in pieces:
            for frame in frames:
                container.mux(video_stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video_stream.encode(None))
        waveform = np.concatenate([audio for audio, _ in pieces])
        for start in range(0, len(waveform), 1024):
            frame = av.AudioFrame.from_ndarray(
                np.float32(waveform[None, start : start + 1024]), format="flt", layout="mono"
            )
            frame.sample_rate = 16000
            container.mux(audio_stream.encode(frame))
        container.mux(audio_stream.encode(None))
    return len(waveform) / 16000


def export_model(shared: Path, out: Path, detect_every: int | None = None) -> Path:
    import keras

    from mater_tf.features.embedders import face_embedder
    from mater_tf.models.mater import MATER
    from mater_tf.serving.export import export_saved_model

    face_spec = f"keras:{shared / 'weights' / 'fer2013_mini_xception.hdf5'}"
    keras.utils.set_random_seed(0)  # every export the same weights: the settings compared give the emotions
    model = MATER(128, face_embedder(face_spec).dim, 6, 8, num_layers=2, d_model=64, num_heads=4, ff_dim=128)
    metadata = {
        "num_windows": 8,
        "window_seconds": 0.5,
        "modalities": ["audio", "face"],
        "embedders": {"audio": {"spec": "logmel"}, "face": {"spec": face_spec}},
    }
    if detect_every is not None:  # as `mater-tf prepare --detect-every` records it
        metadata["embedders"]["face"].update(detect_every=detect_every, detect_side=320)
    return export_saved_model(model, out, ["anger", "disgust", "fear", "happy", "neutral", "sad"], metadata)


def measure(task: str, video: str, export: str, queue) -> None:
    """Runs in a fresh process: one decode-only or predict pass; puts its figures on `queue`."""
    from mater_tf.serving.predictor import Predictor

    predictor = Predictor(export)  # loaded in both, so both processes start alike
    started = time.perf_counter()
    if task == "decode":
        windows = sum(1 for _ in predictor.windows(video))
        result = {"windows": windows}
    else:
        prediction = predictor.predict(video)
        result = {"windows": prediction["num_windows"], "frames": prediction["frames_decoded"]}
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def measure_latency(video: str, export: str, warm_runs: int, queue) -> None:
    """Runs in a fresh process: the cold start, split, then the warm latency of one clip."""
    import statistics

    started = time.perf_counter()
    import tensorflow  # noqa: F401 - its import is the first part of the cold start

    result = {"import_tensorflow": time.perf_counter() - started}
    from mater_tf.serving.predictor import Predictor

    predictor = Predictor(export)
    result.update({f"load_{part}": seconds for part, seconds in predictor.load_seconds.items()})
    started = time.perf_counter()
    first = predictor.predict(video)
    result["first_predict"] = time.perf_counter() - started
    warm, cpu, emotions = [], [], {first["emotion"]}
    for _ in range(warm_runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        prediction = predictor.predict(video)
        warm.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        emotions.add(prediction["emotion"])
    result.update(
        warm_median=statistics.median(warm),
        warm_cpu_median=statistics.median(cpu),
        warm_min=min(warm),
        emotion=first["emotion"],
        emotions_seen=sorted(emotions),
        face_found_rate=first["face_found_rate"],
        windows=first["num_windows"],
        frames=first["frames_decoded"],
    )
    queue.put(result)


def run(task, video, export, warm_runs=None):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    if task == "latency":
        process = context.Process(target=measure_latency, args=(str(video), str(export), warm_runs, queue))
    else:
        process = context.Process(target=measure, args=(task, str(video), str(export), queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--repeats", type=int, nargs="*", default=[1, 3])
    parser.add_argument("--latency-seconds", type=float, default=3.0, help="0: no latency run")
    parser.add_argument("--detect-every", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sources = sorted((args.shared / "data" / "CREMA-D" / "VideoFlash").glob("*.flv"))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        if args.latency_seconds:
            clip = Path(folder) / "clip.mp4"
            seconds = join_videos(sources, clip, 1, args.latency_seconds)
            for every in args.detect_every:
                export = export_model(args.shared, Path(folder) / f"export-{every}", every)
                load_before = os.getloadavg()[0]
                result = run("latency", clip, export, args.warm_runs)
                row = {"clip_seconds": round(seconds, 2), "detect_every": every, "load_average": load_before}
                row.update({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()})
                rows.append(row)
                print(
                    f"{seconds:.1f} s clip, detect every {every}: warm {row['warm_median']:.2f} s (median of "
                    f"{args.warm_runs}, fastest {row['warm_min']:.2f}; CPU {row['warm_cpu_median']:.2f} s); "
                    f"cold start: import tensorflow "
                    f"{row['import_tensorflow']:.2f} s, load model {row['load_model']:.2f} s + embedders "
                    f"{row['load_embedders']:.2f} s, first predict {row['first_predict']:.2f} s; emotion "
                    f"{row['emotion']} (seen {', '.join(row['emotions_seen'])}), face found "
                    f"{row['face_found_rate']:.0%}; load average {load_before:.1f}",
                    flush=True,
                )
        export = export_model(args.shared, Path(folder) / "export", max(args.detect_every))
        for repeats in args.repeats:
            video = Path(folder) / f"joined_{repeats}.mp4"
            seconds = join_videos(sources, video, repeats)
            decode, predict = run("decode", video, export), run("predict", video, export)
            row = {
                "media_seconds": round(seconds, 2),
                "windows": predict["windows"],
                "frames": predict["frames"],
                "decode_seconds": round(decode["seconds"], 2),
                "decode_real_time_factor": round(decode["seconds"] / seconds, 3),
                "predict_seconds": round(predict["seconds"], 2),
                "predict_real_time_factor": round(predict["seconds"] / seconds, 3),
                "predict_over_decode": round(predict["seconds"] / decode["seconds"], 1),
                "decode_peak_rss_mb": round(decode["peak_rss_mb"]),
                "predict_peak_rss_mb": round(predict["peak_rss_mb"]),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
