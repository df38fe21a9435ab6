"""Per-clip extraction: one clip -> the windowed embeddings of the data contract.

These are the per-clip steps that `pipelines/prepare.py` runs over a corpus
and `mater-tf predict` runs on one clip, so a model always sees new clips
prepared exactly as its training records were.

Windows (paper section 2.1): T non-overlapping windows of d seconds from the
clip start. Audio: the whole clip's VGGish log-mel is computed once (100
frames per second) and window t takes frames [round(100 t d), round(100 (t+1) d))
(50 frames for 0.5 s, 25 for 0.25 s), padded with silence where the clip ends
inside it; a window is present when at least half of it holds audio. Face:
window t averages the embeddings of the frames shown in [t d, (t+1) d) in
which the tracked face was found; present when at least one was.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from mater_tf.data.schema import ClipRecord
from mater_tf.features import log_mel
from mater_tf.features.embedders import AudioEmbedder, FaceEmbedder, l2_normalize
from mater_tf.features.log_mel import FRAMES_PER_SECOND, LOG_OFFSET, NUM_MEL_BANDS
from mater_tf.media import SAMPLE_RATE, MediaError, decode_audio, decode_video, is_video

SILENCE_PEAK = 1e-4
STAGES = ("decode", "face_detection", "face_embedding", "log_mel", "audio_embedding")


@dataclasses.dataclass(frozen=True)
class Windowing:
    num_windows: int
    window_seconds: float

    @property
    def frames_per_window(self) -> int:
        return round(self.window_seconds * FRAMES_PER_SECOND)

    def bounds(self, window: int) -> tuple[float, float]:
        return window * self.window_seconds, (window + 1) * self.window_seconds


@dataclasses.dataclass
class Extraction:
    """A clip's record plus what predict and the manifest report about it."""

    record: ClipRecord
    face_found_rate: float | None  # None for audio-only clips
    frames_decoded: int
    seconds: dict  # per stage


class ClipExtractor:
    """Turns a clip file into a ClipRecord.

    Args:
        windowing: T and d.
        audio_embedder: from `mater_tf.features.embedders.audio_embedder`.
        face_embedder: or None to leave every face window masked.
        tracker: a `mater_tf.faces.FaceTracker` (needed with a face embedder).
        frame_side: longest side of the decoded frames (crops come from them).
        keep_log_mel: also store each window's log-mel patch in the record (for
            models whose audio branch learns from the log-mel itself).
    """

    def __init__(
        self,
        windowing: Windowing,
        audio_embedder: AudioEmbedder,
        face_embedder: FaceEmbedder | None = None,
        tracker=None,
        frame_side: int = 640,
        keep_log_mel: bool = False,
    ):
        self.keep_log_mel = keep_log_mel
        self.windowing = windowing
        self.audio_embedder = audio_embedder
        self.face_embedder = face_embedder
        self.tracker = tracker
        self.frame_side = frame_side

    @property
    def face_dim(self) -> int:
        return self.face_embedder.dim if self.face_embedder else 1

    def audio_windows(self, waveform: np.ndarray, seconds: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(embeddings [T, D_a], valid [T], log-mel patches [T, F, 64])."""
        started = time.perf_counter()
        frames = log_mel(waveform, SAMPLE_RATE).numpy()
        seconds["log_mel"] += time.perf_counter() - started
        size, count = self.windowing.frames_per_window, self.windowing.num_windows
        patches = np.full((count, size, NUM_MEL_BANDS), np.log(LOG_OFFSET), np.float32)
        valid = np.zeros(count, np.int64)
        for window in range(count):
            start = round(window * self.windowing.window_seconds * FRAMES_PER_SECOND)
            piece = frames[start : start + size]
            patches[window, : len(piece)] = piece
            valid[window] = len(piece) * 2 >= size
        started = time.perf_counter()
        embeddings = np.zeros((count, self.audio_embedder.dim), np.float32)
        if valid.any():
            embeddings[valid == 1] = l2_normalize(self.audio_embedder.embed(patches[valid == 1]))
        seconds["audio_embedding"] += time.perf_counter() - started
        return embeddings, valid, patches

    def face_windows(self, path, seconds: dict):
        """(embeddings [T, D_v], valid [T], frames found [T], found rate, frames decoded)."""
        count = self.windowing.num_windows
        started = time.perf_counter()
        video = decode_video(path, self.frame_side, until_seconds=count * self.windowing.window_seconds)
        seconds["decode"] += time.perf_counter() - started
        started = time.perf_counter()
        track = self.tracker.track(video.frames)
        seconds["face_detection"] += time.perf_counter() - started
        if not track.found.any():
            raise MediaError(f"{path}: no face found in any of its {len(video.frames)} frames")
        from mater_tf.faces import crop_faces

        started = time.perf_counter()
        crops = crop_faces(video.frames[track.found], track.boxes[track.found])
        per_frame = np.zeros((len(video.frames), self.face_embedder.dim), np.float32)
        per_frame[track.found] = self.face_embedder.embed(crops)
        embeddings = np.zeros((count, self.face_embedder.dim), np.float32)
        found = np.zeros(count, np.int64)
        for window in range(count):
            low, high = self.windowing.bounds(window)
            in_window = (video.times >= low) & (video.times < high) & track.found
            found[window] = in_window.sum()
            if found[window]:
                embeddings[window] = l2_normalize(per_frame[in_window].mean(axis=0))
        seconds["face_embedding"] += time.perf_counter() - started
        return embeddings, (found > 0).astype(np.int64), found, track.found_rate, len(video.frames)

    def extract(
        self, path, clip_id, corpus="", subject="", label=-1, label_name="", waveform=None
    ) -> Extraction:
        """Runs every step on one clip (`waveform`: its 16 kHz audio if already decoded).

        Raises:
            MediaError: naming the file: unreadable, no audio track, shorter
                than one window, silent, or (with a face embedder, for a
                video) no face anywhere.
        """
        seconds = dict.fromkeys(STAGES, 0.0)
        if waveform is None:
            started = time.perf_counter()
            waveform = decode_audio(path)
            seconds["decode"] += time.perf_counter() - started
        duration = len(waveform) / SAMPLE_RATE
        if duration < self.windowing.window_seconds:
            raise MediaError(
                f"{path}: {duration:.2f} s long, shorter than one {self.windowing.window_seconds} s window"
            )
        if np.abs(waveform).max() < SILENCE_PEAK:
            raise MediaError(f"{path}: the audio is silent (peak below {SILENCE_PEAK})")
        audio, audio_valid, patches = self.audio_windows(waveform, seconds)
        count = self.windowing.num_windows
        face = np.zeros((count, self.face_dim), np.float32)
        face_valid = np.zeros(count, np.int64)
        frames_found = np.zeros(count, np.int64)
        found_rate, frames_decoded = None, 0
        if self.face_embedder is not None and is_video(path):
            face, face_valid, frames_found, found_rate, frames_decoded = self.face_windows(path, seconds)
            face_valid = face_valid * (np.arange(count) * self.windowing.window_seconds < duration)
        record = ClipRecord(
            clip_id=clip_id,
            corpus=corpus,
            subject=subject,
            label=label,
            label_name=label_name,
            duration=duration,
            window_seconds=self.windowing.window_seconds,
            audio_embedding=audio,
            face_embedding=face,
            audio_valid=audio_valid,
            face_valid=face_valid,
            face_frames_found=frames_found,
            audio_embedder=self.audio_embedder.name,
            face_embedder=self.face_embedder.name if self.face_embedder else "none",
            audio_log_mel=patches if self.keep_log_mel else None,
        )
        return Extraction(record, found_rate, frames_decoded, seconds)
