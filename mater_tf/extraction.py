"""Per-clip extraction: one clip -> the windowed embeddings of the data contract.

These are the per-clip steps that `pipelines/prepare.py` runs over a corpus
and `mater-tf predict` runs on one clip (both build the extractor with
`build_extractor`), so a model always sees new clips prepared exactly as its
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

from mater_tf.data.schema import ClipRecord
from mater_tf.errors import UserError
from mater_tf.faces import DETECT_EVERY, DETECT_SIDE
from mater_tf.features import log_mel
from mater_tf.features.embedders import AudioEmbedder, FaceEmbedder, l2_normalize
from mater_tf.features.log_mel import HOP_SAMPLES, LOG_OFFSET, NUM_MEL_BANDS, WINDOW_SAMPLES
from mater_tf.features.voice_descriptors import NUM_DESCRIPTORS, voice_descriptors
from mater_tf.media import (
    SAMPLE_RATE,
    MediaError,
    Video,
    decode_audio,
    decode_video,
    is_video,
)

SILENCE_PEAK = 1e-4
STAGES = ("decode", "face_detection", "face_embedding", "log_mel", "audio_embedding")
# Sample counts from float seconds (0.5 * 3 * 16000 ...) are rounded, never floored.
_SECONDS_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class Windowing:
    """T windows of d seconds from the clip start."""

    num_windows: int
    window_seconds: float

    @property
    def window_samples(self) -> int:
        return round(self.window_seconds * SAMPLE_RATE)

    @property
    def frames_per_window(self) -> int:
        """Log-mel frames whose whole analysis window fits in one window (48 for 0.5 s)."""
        return (self.window_samples - WINDOW_SAMPLES) // HOP_SAMPLES + 1

    def first_frame(self, window: int) -> int:
        """Index, in the whole clip's log-mel, of window `window`'s first frame."""
        return round(window * self.window_seconds * SAMPLE_RATE / HOP_SAMPLES)

    def bounds(self, window: int) -> tuple[float, float]:
        return window * self.window_seconds, (window + 1) * self.window_seconds

    def present(self, duration: float, face_frames_found: np.ndarray | None = None) -> np.ndarray:
        """int64 [T]: 1 where window t counts as present, for audio and face alike.

        Args:
            duration: the clip's length in seconds.
            face_frames_found: [T] frames of each window in which the face was
                found; given, a window also needs at least one.
        """
        starts = np.arange(self.num_windows) * self.window_seconds
        inside = np.clip(duration - starts, 0.0, self.window_seconds)
        present = 2 * inside >= self.window_seconds - _SECONDS_TOLERANCE
        if face_frames_found is not None:
            present &= np.asarray(face_frames_found) > 0
        return present.astype(np.int64)


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
        from mater_tf.media.clip import decode_clip

        return decode_clip(path, self.frame_side, self.windowing.num_windows * self.windowing.window_seconds)

    def face_windows(self, path, seconds: dict, video: Video | None = None):
        """(embeddings [T, D_v], frames found [T], found rate, frames decoded); no face -> all zero."""
        count = self.windowing.num_windows
        if video is None:
            started = time.perf_counter()
            video = decode_video(path, self.frame_side, until_seconds=count * self.windowing.window_seconds)
            seconds["decode"] += time.perf_counter() - started
        started = time.perf_counter()
        # Detection frames are placed per window, as a stream is read (`embed_windows`).
        starts = np.arange(count) * self.windowing.window_seconds
        track = self.tracker.track(video.frames, segments=np.searchsorted(starts, video.times, "right"))
        seconds["face_detection"] += time.perf_counter() - started
        embeddings = np.zeros((count, self.face_embedder.dim), np.float32)
        found = np.zeros(count, np.int64)
        if not track.found.any():
            return embeddings, found, track.found_rate, len(video.frames)
        from mater_tf.faces import crop_faces

        started = time.perf_counter()
        crops = crop_faces(video.frames[track.found], track.boxes[track.found])
        per_frame = np.zeros((len(video.frames), self.face_embedder.dim), np.float32)
        per_frame[track.found] = self.face_embedder.embed(crops)
        for window in range(count):
            low, high = self.windowing.bounds(window)
            in_window = (video.times >= low) & (video.times < high) & track.found
            found[window] = in_window.sum()
            if found[window]:
                embeddings[window] = l2_normalize(per_frame[in_window].mean(axis=0))
        seconds["face_embedding"] += time.perf_counter() - started
        return embeddings, found, track.found_rate, len(video.frames)

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
        if self.face_embedder is not None and decoded.sum():
            frames = np.concatenate([window.frames for window in windows if len(window.frame_times)])
            owner = np.repeat(np.arange(count), decoded)
            # One window at a time: MTCNN's boxes move by a pixel or two with the batch they run in,
            # so windows scored one at a time (live) and in blocks (a file) must batch alike.
            from mater_tf.faces import FaceTrack

            pieces = []
            for window in windows:
                if len(window.frame_times):
                    pieces.append(self.tracker.track(window.frames, last=track_last))
                    track_last = pieces[-1].last
            track = FaceTrack(
                np.concatenate([piece.boxes for piece in pieces]),
                np.concatenate([piece.found for piece in pieces]),
                track_last,
            )
            if track.found.any():
                from mater_tf.faces import crop_faces

                per_frame = self.face_embedder.embed(
                    crop_faces(frames[track.found], track.boxes[track.found])
                )
                for row in range(count):
                    mine = owner[track.found] == row
                    found[row] = mine.sum()
                    if found[row]:
                        face[row] = l2_normalize(per_frame[mine].mean(axis=0))
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
        from mater_tf.media import check_not_truncated

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


def build_extractor(
    windows,
    window_seconds,
    modalities,
    face_spec,
    audio_spec,
    frame_side=640,
    detect_side=DETECT_SIDE,
    keep_log_mel=False,
    detect_every=DETECT_EVERY,
):
    """The extractor and its embedders' description (names and weights' checksums).

    `detect_side` and `detect_every` are MTCNN's frame size and every how many
    frames it runs (`mater_tf.faces`); the description records them.

    Raises:
        UserError: naming the `mater-tf prepare` option to fix.
    """
    from mater_tf.features.embedders import audio_embedder, face_embedder, resolved_spec

    if windows < 1 or window_seconds <= 0:
        raise UserError(f"--windows {windows} and --window-seconds {window_seconds} must be positive")
    if Windowing(windows, window_seconds).frames_per_window < 1:
        raise UserError(
            f"--window-seconds {window_seconds} is shorter than one {WINDOW_SAMPLES / SAMPLE_RATE} s "
            "log-mel frame; use longer windows (the paper: 0.5 or 0.25)"
        )
    for option, value in (("--detect-every", detect_every), ("--detect-side", detect_side)):
        if not isinstance(value, int) or value < 1:
            default = DETECT_EVERY if option == "--detect-every" else DETECT_SIDE
            raise UserError(f"{option} {value} must be a whole number of at least 1 (default {default})")
    unknown = set(modalities) - {"audio", "face"}
    if unknown or "audio" not in modalities:
        raise UserError(f"--modalities '{','.join(modalities)}' must be audio,face or audio")
    audio = audio_embedder(audio_spec)
    face, tracker = None, None
    if "face" in modalities:
        if not face_spec:
            raise UserError(
                "--face-embedder is needed for the face modality: vggm:PATH or keras:PATH[:LAYER] "
                "(or pass --modalities audio)"
            )
        from mater_tf.faces import FaceTracker

        face = face_embedder(face_spec)
        tracker = FaceTracker(detect_side=detect_side, detect_every=detect_every)
    info = {
        "audio": {"name": audio.name, "spec": resolved_spec(audio_spec), "sha256": audio.checksum},
        "face": {
            "name": face.name,
            "spec": resolved_spec(face_spec),
            "sha256": face.checksum,
            "detect_side": detect_side,
            "detect_every": detect_every,
        }
        if face
        else None,
    }
    extractor = ClipExtractor(
        Windowing(windows, window_seconds), audio, face, tracker, frame_side, keep_log_mel
    )
    info["keep_log_mel"] = keep_log_mel
    return extractor, info
