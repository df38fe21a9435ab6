"""The clip extractor: one clip -> the windowed embeddings of the data contract (`ClipExtractor`).

These are the per-clip steps that `pipelines/prepare.py` runs over a corpus
and `mater-tf predict` runs on one clip (both build the extractor with
`mater_tf.data.extraction.extractor_factory.build_extractor`), so a model always sees new clips prepared exactly as its
training records were.

Windows (paper section 2.1): T non-overlapping windows of d seconds; window t
covers [t d, (t+1) d) seconds of the clip. The clip's time origin is its
container's start, shared by the audio and the frames (see `mater_tf.media`).

* Audio: the whole clip's VGGish log-mel is computed once (25 ms frames every
  10 ms). Window t takes only the frames whose whole 25 ms analysis window
  lies inside it: floor((d * 16000 - 400) / 160) + 1 frames (48 for 0.5 s,
  23 for 0.25 s) from frame round(100 t d), i.e. exactly the log-mel of the
  samples [t d 16000, (t+1) d 16000) when d is a multiple of 10 ms (otherwise
  the start is within half a hop of it). Frames past the clip end are silence.
* Face: window t averages the embeddings of the frames whose presentation time
  lies in [t d, (t+1) d) and in which the tracked face was found.
* Present (`Windowing.present`, one rule for both): a window is present when at
  least half of it lies inside the clip (its audio duration); a face window
  additionally needs the face found in at least one of its frames. A video in
  which no face is found anywhere keeps its voice: every face window masked.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from mater_tf.data.extraction.face_windows import clip_face_windows, stream_face_windows
from mater_tf.data.extraction.windowing import Windowing
from mater_tf.data.schema import ClipRecord
from mater_tf.features import log_mel
from mater_tf.features.embedders import AudioEmbedder, FaceEmbedder, l2_normalize
from mater_tf.features.log_mel import HOP_SAMPLES, LOG_OFFSET, NUM_MEL_BANDS, WINDOW_SAMPLES
from mater_tf.features.voice_descriptors import NUM_DESCRIPTORS, voice_descriptors
from mater_tf.media import MediaError, MediaFile, Video, check_not_truncated, decode_audio, is_video
from mater_tf.media.formats import SAMPLE_RATE

SILENCE_PEAK = 1e-4
STAGES = ("decode", "face_detection", "face_embedding", "log_mel", "audio_embedding")


@dataclasses.dataclass
class WindowFeatures:
    """The model inputs of consecutive windows read from a stream (see `ClipExtractor.embed_windows`)."""

    audio_embedding: np.ndarray  # [n, D_a]
    face_embedding: np.ndarray  # [n, D_v], zero where no face
    face_valid: np.ndarray  # int64 [n]
    face_frames_found: np.ndarray  # int64 [n]
    frames: np.ndarray  # int64 [n]: frames decoded in each window
    audio_log_mel: np.ndarray | None  # [n, F, 64] with keep_log_mel
    audio_voice_descriptors: np.ndarray | None  # [n, F, 18] with keep_log_mel


@dataclasses.dataclass
class Extraction:
    """A clip's record plus what predict and the manifest report about it."""

    record: ClipRecord
    face_found_rate: float | None  # None when no face was looked for (audio-only clip or model)
    frames_decoded: int
    seconds: dict  # per stage

    @property
    def face_windows(self) -> int | None:
        """Face windows present; None when no face was looked for, 0 for a video with no face."""
        return None if self.face_found_rate is None else int(self.record.face_valid.sum())


class ClipExtractor:
    """Turns a clip file into a ClipRecord.

    Args:
        windowing: T and d.
        audio_embedder: from `mater_tf.features.embedders.audio_embedder`.
        face_embedder: or None to leave every face window masked.
        tracker: a `mater_tf.faces.FaceTracker` (needed with a face embedder).
        frame_side: longest side of the decoded frames (crops come from them).
        keep_log_mel: also store each window's log-mel patch and its voice
            descriptors in the record (for models whose audio branch learns from the
            log-mel itself, and their utterance functionals).
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

    def descriptor_windows(self, spans) -> np.ndarray | None:
        """[n, F, 18] voice descriptors of windows' audio spans (`audio_span`), with keep_log_mel."""
        if not self.keep_log_mel:
            return None
        size = self.windowing.frames_per_window
        rows = [voice_descriptors(samples, size).numpy() for samples in spans]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, size, NUM_DESCRIPTORS), np.float32)

    def audio_windows(self, waveform: np.ndarray, seconds: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(embeddings [T, D_a], valid [T], log-mel patches [T, F, 64])."""
        started = time.perf_counter()
        frames = log_mel(waveform, SAMPLE_RATE).numpy()
        seconds["log_mel"] += time.perf_counter() - started
        size, count = self.windowing.frames_per_window, self.windowing.num_windows
        patches = np.full((count, size, NUM_MEL_BANDS), np.log(LOG_OFFSET), np.float32)
        for window in range(count):
            start = self.windowing.first_frame(window)
            piece = frames[start : start + size]
            patches[window, : len(piece)] = piece
        valid = self.windowing.present(len(waveform) / SAMPLE_RATE)
        started = time.perf_counter()
        embeddings = np.zeros((count, self.audio_embedder.dim), np.float32)
        if valid.any():
            embeddings[valid == 1] = l2_normalize(self.audio_embedder.embed(patches[valid == 1]))
        seconds["audio_embedding"] += time.perf_counter() - started
        return embeddings, valid, patches

    def reads_frames(self, path) -> bool:
        """Whether `decode` reads frames of this clip (a video, with the face modality)."""
        return self.face_embedder is not None and is_video(path)

    def decode(self, path) -> tuple[np.ndarray, Video | None]:
        """(16 kHz waveform, frames or None) of a clip, each video container read once.

        The frames are those `extract` uses (up to the last window's end, at
        most `frame_side` px); None for an audio file, a container without a
        video stream, or an extractor without the face modality.
        """
        if not self.reads_frames(path):
            return decode_audio(path), None
        media = MediaFile.probe(path)
        return media.decode_clip(self.frame_side, self.windowing.num_windows * self.windowing.window_seconds)

    def face_windows(self, path, seconds: dict, video: Video | None = None):
        """(embeddings [T, D_v], frames found [T], found rate, frames decoded); no face -> all zero.

        Without `video`, the clip's frames (up to the last window's end) are decoded here.
        """
        if video is None:
            started = time.perf_counter()
            until = self.windowing.num_windows * self.windowing.window_seconds
            video = MediaFile.probe(path).decode_video(self.frame_side, until_seconds=until)
            seconds["decode"] += time.perf_counter() - started
        return clip_face_windows(self.windowing, self.tracker, self.face_embedder, video, seconds)

    def audio_span(self, window: int) -> tuple[int, int]:
        """(first sample, sample count) of the audio window `window`'s log-mel frames come from.

        The frames cut from that span alone are those `audio_windows` takes from
        the whole clip's log-mel (frames are cut without padding, every hop).
        """
        frames = self.windowing.frames_per_window
        return self.windowing.first_frame(window) * HOP_SAMPLES, WINDOW_SAMPLES + HOP_SAMPLES * (frames - 1)

    def embed_windows(self, windows, track_last=None) -> tuple[WindowFeatures, object]:
        """Embeds consecutive present windows of a stream (`mater_tf.media.stream.MediaWindow`s).

        The same numbers as `extract` gives those windows of the whole clip: each
        window's log-mel frames come from its own audio span (`audio_span`), the
        face is tracked across the windows going on from `track_last` (the track's
        last box after the previous windows; None at the clip start). Faces are
        tracked one window at a time (its detection frames in one batch),
        whatever the number of windows given, so the result does not depend on
        how a stream is cut into calls (the same detection frames as `extract`,
        whose boxes are within a pixel or two: it batches the detection frames
        of all windows, 16 at a time).

        Returns:
            The windows' features and the track's last box, for the next call.
        """
        size, count = self.windowing.frames_per_window, len(windows)
        patches = np.full((count, size, NUM_MEL_BANDS), np.log(LOG_OFFSET), np.float32)
        for row, window in enumerate(windows):
            if len(window.samples) >= WINDOW_SAMPLES:
                frames = log_mel(window.samples, SAMPLE_RATE).numpy()[:size]
                patches[row, : len(frames)] = frames
        audio = l2_normalize(self.audio_embedder.embed(patches)) if count else np.zeros((0, 1), np.float32)
        face = np.zeros((count, self.face_dim), np.float32)
        found = np.zeros(count, np.int64)
        decoded = np.array([len(window.frame_times) for window in windows], np.int64)
        if self.face_embedder is not None:
            face, found, track_last = stream_face_windows(
                self.tracker, self.face_embedder, windows, track_last
            )
        features = WindowFeatures(
            audio_embedding=audio.astype(np.float32),
            face_embedding=face,
            face_valid=(found > 0).astype(np.int64),
            face_frames_found=found,
            frames=decoded,
            audio_log_mel=patches if self.keep_log_mel else None,
            audio_voice_descriptors=self.descriptor_windows([window.samples for window in windows]),
        )
        return features, track_last

    def check_length(self, path, duration: float) -> None:
        """Refuses a clip whose decoded audio falls short of its header's length by half a window or
        more (truncated or corrupt, whatever is left), or that is shorter than one window.

        Raises:
            MediaError: naming the file and the lengths.
        """
        check_not_truncated(path, duration, self.windowing.window_seconds / 2)
        if duration < self.windowing.window_seconds:
            raise MediaError(
                f"{path}: {duration:.2f} s long, shorter than one {self.windowing.window_seconds} s window"
            )

    def extract(
        self, path, clip_id, corpus="", subject="", label=-1, label_name="", waveform=None, video=None
    ) -> Extraction:
        """Runs every step on one clip (`waveform`, `video`: as `decode` gives them, if already decoded).

        Without them a video's audio track and frames are decoded in one pass.

        A video in which no face is found is kept: its face windows are all
        masked (`Extraction.face_windows` is 0) and its voice is used.

        Raises:
            MediaError: naming the file: unreadable, no audio track, shorter
                than one window, or silent.
        """
        seconds = dict.fromkeys(STAGES, 0.0)
        if waveform is None:
            started = time.perf_counter()
            waveform, video = self.decode(path)
            seconds["decode"] += time.perf_counter() - started
        duration = len(waveform) / SAMPLE_RATE
        self.check_length(path, duration)
        if np.abs(waveform).max() < SILENCE_PEAK:
            raise MediaError(f"{path}: the audio is silent (peak below {SILENCE_PEAK})")
        audio, audio_valid, patches = self.audio_windows(waveform, seconds)
        count = self.windowing.num_windows
        face = np.zeros((count, self.face_dim), np.float32)
        frames_found = np.zeros(count, np.int64)
        found_rate, frames_decoded = None, 0
        if self.face_embedder is not None and (video is not None or is_video(path)):
            face, frames_found, found_rate, frames_decoded = self.face_windows(path, seconds, video)
        face_valid = self.windowing.present(duration, frames_found)
        face = face * face_valid[:, None]
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
            audio_voice_descriptors=self.descriptor_windows(
                [waveform[start : start + length] for start, length in map(self.audio_span, range(count))]
            ),
        )
        return Extraction(record, found_rate, frames_decoded, seconds)
