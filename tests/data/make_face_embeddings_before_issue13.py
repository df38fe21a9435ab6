"""Writes face_embeddings_before_issue13.npz: face boxes and per-frame embeddings of one CREMA-D clip.

Run once, at commit c1cb82d (crops cut from float32 copies of the frames, the face model
called eagerly), from the repository root, with ../shared beside the repository:
    python tests/data/make_face_embeddings_before_issue13.py
The boxes are MTCNN's (stored, so the test needs no detector); the embeddings are what that
code gave for the crops around them, with the FER2013 mini-Xception and the seeded VGG-M.
"""

import os

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mater_tf.faces import FaceTracker, crop_faces  # noqa: E402
from mater_tf.features.embedders import face_embedder  # noqa: E402
from mater_tf.media import decode_video  # noqa: E402

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared"
CLIP = "CREMA-D/VideoFlash/1001_DFA_ANG_XX.flv"
EMBEDDERS = {
    "mini_xception": "keras:{shared}/weights/fer2013_mini_xception.hdf5",
    "vggm_seeded": "vggm:{shared}/golden/vgg-m-face-bn-fer-seeded-conv.mat",
}


def main():
    video = decode_video(SHARED / "data" / CLIP, 640)  # the extractor's frame_side
    track = FaceTracker().track(video.frames)
    boxes = track.boxes[track.found]
    crops = crop_faces(video.frames[track.found], boxes)
    arrays = {"found": track.found, "boxes": boxes, "frame_shape": np.array(video.frames.shape)}
    for name, spec in EMBEDDERS.items():
        arrays[name] = face_embedder(spec.format(shared=SHARED)).embed(crops)
    np.savez_compressed(HERE / "face_embeddings_before_issue13.npz", **arrays)


if __name__ == "__main__":
    main()
