"""A clip's face, window by window: the tracked face's embeddings averaged over each window's
frames in which it was found, for a whole clip (`clip_face_windows`) and for consecutive
windows of a stream (`stream_face_windows`)."""

from __future__ import annotations

import time

import numpy as np

from mater_tf.faces import FaceTrack, crop_faces
from mater_tf.features.embedders import l2_normalize


def clip_face_windows(windowing, tracker, face_embedder, video, seconds: dict):
    """(embeddings [T, D_v], frames found [T], found rate, frames decoded) of a clip's frames
    (`mater_tf.media.Video`); no face -> all zero. Adds to `seconds`' detection and embedding."""
    count = windowing.num_windows
    started = time.perf_counter()
    # Detection frames are placed per window, as a stream is read (`stream_face_windows`).
    starts = np.arange(count) * windowing.window_seconds
    track = tracker.track(video.frames, segments=np.searchsorted(starts, video.times, "right"))
    seconds["face_detection"] += time.perf_counter() - started
    embeddings = np.zeros((count, face_embedder.dim), np.float32)
    found = np.zeros(count, np.int64)
    if not track.found.any():
        return embeddings, found, track.found_rate, len(video.frames)
    started = time.perf_counter()
    crops = crop_faces(video.frames[track.found], track.boxes[track.found])
    per_frame = np.zeros((len(video.frames), face_embedder.dim), np.float32)
    per_frame[track.found] = face_embedder.embed(crops)
    for window in range(count):
        low, high = windowing.bounds(window)
        in_window = (video.times >= low) & (video.times < high) & track.found
        found[window] = in_window.sum()
        if found[window]:
            embeddings[window] = l2_normalize(per_frame[in_window].mean(axis=0))
    seconds["face_embedding"] += time.perf_counter() - started
    return embeddings, found, track.found_rate, len(video.frames)


def stream_face_windows(tracker, face_embedder, windows, track_last):
    """(embeddings [n, D_v], frames found [n], the track's last box) of consecutive stream windows
    (`mater_tf.media.stream.MediaWindow`s), the face tracked on from `track_last`.

    Faces are tracked one window at a time (its detection frames in one batch):
    MTCNN's boxes move by a pixel or two with the batch they run in, so windows
    scored one at a time (live) and in blocks (a file) must batch alike.
    """
    count = len(windows)
    face = np.zeros((count, face_embedder.dim), np.float32)
    found = np.zeros(count, np.int64)
    decoded = np.array([len(window.frame_times) for window in windows], np.int64)
    if not decoded.sum():
        return face, found, track_last
    frames = np.concatenate([window.frames for window in windows if len(window.frame_times)])
    owner = np.repeat(np.arange(count), decoded)
    pieces = []
    for window in windows:
        if len(window.frame_times):
            pieces.append(tracker.track(window.frames, last=track_last))
            track_last = pieces[-1].last
    track = FaceTrack(
        np.concatenate([piece.boxes for piece in pieces]),
        np.concatenate([piece.found for piece in pieces]),
        track_last,
    )
    if track.found.any():
        per_frame = face_embedder.embed(crop_faces(frames[track.found], track.boxes[track.found]))
        for row in range(count):
            mine = owner[track.found] == row
            found[row] = mine.sum()
            if found[row]:
                face[row] = l2_normalize(per_frame[mine].mean(axis=0))
    return face, found, track_last
