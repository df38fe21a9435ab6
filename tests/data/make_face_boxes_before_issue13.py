"""Writes face_boxes_before_issue13.npz: MTCNN's face track through one CREMA-D clip, every frame.

Run once, at commit a245d04 (MTCNN eager, on every frame, 320 px, 16-frame batches), from the
repository root, with ../shared beside the repository:
    python tests/data/make_face_boxes_before_issue13.py
`--detect-every 1` must give these boxes (tests/test_faces.py).
"""

import os

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mater_tf.faces import FaceTracker  # noqa: E402
from mater_tf.media import decode_video  # noqa: E402

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared"
CLIP = "CREMA-D/VideoFlash/1001_DFA_DIS_XX.flv"


def main():
    video = decode_video(SHARED / "data" / CLIP, 640)  # the extractor's frame_side
    track = FaceTracker(detect_side=320).track(video.frames)
    np.savez_compressed(HERE / "face_boxes_before_issue13.npz", found=track.found, boxes=track.boxes)


if __name__ == "__main__":
    main()
