"""The predictor: an exported model loaded once with the extractor its training records were made
with, so a clip or stream is extracted exactly the same way.

The export's `mater_tf.json` says how its training records were made
(windowing, embedders with their weights' checksums); the extractor is built
from it and a clip is read window by window in one streaming pass, so memory
stays bounded however long the clip (`mater_tf.media.stream`). Which model
(`--model`) is found and loaded by `mater_tf.serving.model_loading`; a clip's
windows are scored by `mater_tf.serving.clip_scoring`, which says what the
result holds, and `mater_tf.serving.prediction_files` writes it.

A built-in model (`mater_tf.builtin`, given by name) is checked against its
sha256 when loaded, and where its card names a face channel, a video's face
expression is classified window by window and shown beside the voice
(`mater_tf.serving.face_expression`; never fused with it).
"""

from __future__ import annotations

import numpy as np

from mater_tf.config.model import learns_audio_frontend
from mater_tf.data import schema, synthetic
from mater_tf.errors import UserError
from mater_tf.serving.export import read_export_metadata
from mater_tf.serving.model_loading import load_model, resolve_model


class Predictor:
    """Loads an export once; `predict(path)` extracts and scores one clip.

    Args:
        model_dir: an export folder, a run folder, a TF Serving model base (see `resolve_export`),
            the name of a built-in model, or None for the default built-in (see `resolve_model`).
        audio_embedder / face_embedder: specs overriding those recorded at
            prepare time (weights moved); their checksums must still match.
    """

    def __init__(self, model_dir, audio_embedder: str | None = None, face_embedder: str | None = None):
        import time

        from mater_tf.data.extraction import build_extractor

        started = time.perf_counter()
        self.export_dir, self.builtin = resolve_model(model_dir)
        self.metadata = read_export_metadata(self.export_dir)
        if self.metadata.get("audio_embedder") == synthetic.EMBEDDER:
            # Its records are random vectors no embedder made: asking for embedders would only lead
            # to their refusal (another name, another size).
            raise UserError(
                f"{self.export_dir}: trained on the synthetic corpus (random vectors, not embeddings of any "
                "media), so it cannot score real clips; train on records made by mater-tf prepare, or leave "
                "out --model to use the built-in model"
            )
        self.model = load_model(self.export_dir, self.metadata["label_names"])
        # Seconds spent loading: the SavedModel, then the embedders and the face detector.
        self.load_seconds = {"model": time.perf_counter() - started}
        started = time.perf_counter()
        self.modalities = self.metadata.get("modalities", ["audio", "face"])
        recorded = self.metadata.get("embedders") or {}
        audio_spec = audio_embedder or (recorded.get("audio") or {}).get("spec")
        face_spec = face_embedder or (recorded.get("face") or {}).get("spec")
        if not audio_spec:
            raise UserError(
                f"{self.export_dir}: the training records name no audio embedder spec (they were not made by "
                "mater-tf prepare); pass --audio-embedder and --face-embedder as used for them"
            )
        modalities = ["audio", "face"] if face_spec else ["audio"]
        self.learns_audio = learns_audio_frontend(
            self.metadata.get("audio_frontend", "none"), self.modalities
        )
        # The face detector's settings of the training records (records made before they were
        # recorded were detected in every frame at 320 px, the default size then).
        detection = {
            key: (recorded.get("face") or {}).get(key, 1 if key == "detect_every" else 320)
            for key in ("detect_every", "detect_side")
        }
        self.extractor, info = build_extractor(
            self.metadata["num_windows"],
            self.metadata["window_seconds"],
            modalities,
            face_spec,
            audio_spec,
            keep_log_mel=self.learns_audio,
            **detection,
        )
        for modality, name_key in (("audio", "audio_embedder"), ("face", "face_embedder")):
            expected = self.metadata.get(name_key)
            used = (info.get(modality) or {}).get("name", "none")
            if modality in self.modalities and expected and used != expected:
                raise UserError(
                    f"the {modality} embedder '{used}' differs from the one the model was trained with "
                    f"('{expected}'); give the same weights file"
                )
        if self.learns_audio:
            self._check_log_mel_frames()
        self.face_expression = self._face_channel()
        self.load_seconds["embedders"] = time.perf_counter() - started

    def _face_channel(self):
        """The built-in's face-expression channel (shown beside the voice), or None."""
        if self.builtin is None or not self.builtin.face_channel:
            return None
        from mater_tf import builtin
        from mater_tf.features.expression import ExpressionClassifier
        from mater_tf.serving.face_expression import FaceExpressionChannel

        face = builtin.get(self.builtin.face_channel)
        classifier = ExpressionClassifier(builtin.verified_path(face), name=face.name)  # checksums checked
        # MTCNN at its defaults (every 5th frame, 320 px): the voice's records hold no face settings.
        return FaceExpressionChannel(classifier, face.name)

    @property
    def reads_voice_descriptors(self) -> bool:
        """Whether the model takes the windows' voice descriptors (its utterance functionals)."""
        _, signature = self.model.signatures["serving_default"].structured_input_signature
        return schema.VOICE_DESCRIPTORS_INPUT in signature

    @property
    def model_name(self) -> str:
        """What results call the model: a built-in's name, or the export folder."""
        return self.builtin.name if self.builtin is not None else str(self.export_dir)

    def _check_log_mel_frames(self) -> None:
        """Refuses a model whose log-mel patches are not the size the extractor cuts now."""
        _, signature = self.model.signatures["serving_default"].structured_input_signature
        spec = signature.get(schema.LOG_MEL_INPUT)
        trained, cut = (
            (spec.shape[2] if spec is not None else None),
            self.extractor.windowing.frames_per_window,
        )
        if trained is not None and trained != cut:
            raise UserError(
                f"{self.export_dir}: the model learns from {trained}-frame log-mel windows, but a "
                f"{self.metadata['window_seconds']} s window is now {cut} frames (only the frames inside it; "
                "records prepared before that change reached into the next window): run mater-tf prepare "
                "again and retrain"
            )

    def windows(self, source, realtime: bool = False, input_format: str | None = None, stop=None, live=False):
        """The present windows of a clip, file or stream, read in one pass (`mater_tf.media.stream`).

        Audio files are decoded whole (16 kHz audio is small) by the reader their
        training records came from; containers and live sources are demuxed as a
        stream, frames only for models with the face modality.
        """
        from mater_tf.media import MediaFile, check_readable, decode_audio, named_audio_file
        from mater_tf.media.stream import stream_windows, waveform_windows

        seconds, span = self.metadata["window_seconds"], self.extractor.audio_span
        if not live:
            check_readable(source)
            if named_audio_file(source):
                return waveform_windows(decode_audio(source), seconds, span)
        # Opening a file here first gives a corrupt one the file's message, not the live source's.
        has_video = live or MediaFile.probe(source).streams.video
        video = ("face" in self.modalities or self.face_expression is not None) and has_video
        return stream_windows(
            source,
            seconds,
            span,
            video=video,
            max_side=self.extractor.frame_side,
            realtime=realtime,
            input_format=input_format,
            stop=stop,
        )

    def warm_up(self) -> None:
        """Runs every step once on made-up media, so a live stream's first window does not pay
        for TensorFlow's first calls."""
        from mater_tf.media import MediaError
        from mater_tf.media.stream import MediaWindow

        seconds = self.metadata["window_seconds"]
        first, count = self.extractor.audio_span(0)
        noise = np.random.default_rng(0).uniform(-0.1, 0.1, count).astype(np.float32)
        frames = np.full((2, 360, 640, 3), 128, np.uint8)
        window = MediaWindow(0, 0.0, seconds, noise, seconds, frames, np.array([0.0, 0.04]), 0.0)
        try:
            self.predict("warm-up", windows=[window])
        except MediaError:
            pass

    def predict(
        self,
        source,
        stride: int = 1,
        block_windows: int = 8,
        windows=None,
        on_window=None,
        interruptible: bool = False,
    ) -> dict:
        """Scores a whole clip (or stream) window by window; returns the result that
        `mater_tf.serving.clip_scoring` describes.

        Args:
            source: the clip's path (or the stream's name, for the result).
            stride: windows between the starts of the model's inputs.
            block_windows: windows embedded together; 1 for live input, so each
                window is scored as soon as it completes (windows already waiting
                behind it, up to `clip_scoring.CATCH_UP_WINDOWS`, join its block).
            windows: the windows to score (default: `self.windows(source)`).
            on_window: called as `on_window(window, segment)` after each window
                with the segment that ends at it (`SlidingScorer.live_output`).
            interruptible: Ctrl-C (KeyboardInterrupt) ends the reading and the
                windows read so far are scored (`result["interrupted"]` is True).

        Raises:
            MediaError: naming the file: unreadable, no audio, silent, or shorter
                than one window.
        """
        from mater_tf.serving.clip_scoring import score_clip

        return score_clip(self, source, stride, block_windows, windows, on_window, interruptible)
