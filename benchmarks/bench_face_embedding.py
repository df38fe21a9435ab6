"""Face embedding (crop + face model) before and after issue 13, side by side on the CREMA-D sample.

    python benchmarks/bench_face_embedding.py [--shared ../shared] [--rounds 5]

Every CREMA-D sample video is decoded as prepare decodes it (longest side 640)
and its face tracked once with MTCNN (not timed). Then, in interleaved rounds,
each clip's found frames are embedded
  * before: crops cut from a float32 copy of the frames, the face model called eagerly
    (the code of commit c1cb82d, copied here);
  * after: `mater_tf.faces.crop_faces` (crops cut from the uint8 frames) and
    `FaceEmbedder.embed` (preprocessing and model in one tf.function);
and the seconds of each are summed over the clips. Prints the ratio and the
largest difference between the two paths' embeddings, for the FER2013
mini-Xception and (if ../shared/golden has it) the seeded VGG-M.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EMBEDDERS = {
    "mini_xception": "keras:{shared}/weights/fer2013_mini_xception.hdf5",
    "vggm_seeded": "vggm:{shared}/golden/vgg-m-face-bn-fer-seeded-conv.mat",
}


def crop_before(frames, boxes, size=96, margin=0.15):
    """crop_faces as it was: the frames cast to float32 first."""
    import tensorflow as tf

    from mater_tf.faces import crop_boxes

    normalised = crop_boxes(boxes, *frames.shape[1:3], margin=margin)
    crops = tf.image.crop_and_resize(
        tf.cast(frames, tf.float32), normalised, tf.range(len(frames)), (size, size)
    )
    return tf.cast(tf.clip_by_value(tf.round(crops), 0, 255), tf.uint8).numpy()


def embed_before(embedder, crops):
    """FaceEmbedder.embed as it was: the model called eagerly."""
    import numpy as np
    import tensorflow as tf

    images = tf.image.resize(tf.cast(crops, tf.float32), embedder.input_size)
    if embedder.grey:
        images = tf.image.rgb_to_grayscale(images)
    if embedder.scale == "symmetric":
        images = images / 127.5 - 1.0
    return np.asarray(embedder.model(images, training=False), np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import numpy as np

    from mater_tf.faces import FaceTracker, crop_faces
    from mater_tf.features.embedders import face_embedder
    from mater_tf.media import decode_video

    shared = Path(args.shared)
    clips = []
    tracker = FaceTracker()
    for path in sorted((shared / "data" / "CREMA-D" / "VideoFlash").glob("*.flv")):
        video = decode_video(path, 640)
        track = tracker.track(video.frames)
        clips.append((video.frames[track.found], track.boxes[track.found]))
    frames = sum(len(boxes) for _, boxes in clips)
    print(
        f"{len(clips)} clips, {frames} frames with a face, frames {clips[0][0].shape[1:3]}; load average {os.getloadavg()[0]:.1f}"
    )
    for name, spec in EMBEDDERS.items():
        spec = spec.format(shared=shared)
        if not Path(spec.split(":", 1)[1]).exists():
            continue
        embedder = face_embedder(spec)
        paths = {
            "before": lambda f, b, embedder=embedder: embed_before(embedder, crop_before(f, b)),
            "after": lambda f, b, embedder=embedder: embedder.embed(crop_faces(f, b)),
        }
        outputs = {key: [run(f, b) for f, b in clips] for key, run in paths.items()}  # warm up, trace
        difference = max(float(np.abs(a - b).max()) for a, b in zip(outputs["before"], outputs["after"]))
        scale = max(float(np.abs(a).max()) for a in outputs["before"])
        seconds = {key: [] for key in paths}
        for round_index in range(args.rounds):
            for key in paths if round_index % 2 == 0 else reversed(list(paths)):
                started = time.perf_counter()
                for f, b in clips:
                    paths[key](f, b)
                seconds[key].append(time.perf_counter() - started)
        before, after = (statistics.median(seconds[key]) for key in ("before", "after"))
        print(
            f"{name:<14} before {before * 1000 / frames:.2f} ms/frame, after {after * 1000 / frames:.2f} ms/frame: "
            f"{before / after:.2f}x; max |difference| {difference:.2e} (largest |value| {scale:.2f})"
        )
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
