"""Prediction on raw clips and streams with an exported model: which emotion, when, from which modality.

The export's `mater_tf.json` says how its training records were made
(windowing, embedders with their weights' checksums), and the clip is
extracted exactly the same way, window by window in one streaming pass, so
memory stays bounded however long the clip (`mater_tf.media.stream`). The
model's T-window input slides over the whole clip (`mater_tf.serving.sliding`
says how segments are placed and combined). Per clip the result (JSON) holds:

* `emotion`, `probabilities`, `rule`: the fused decision of the whole clip
  and the rule that makes it; `votes`: windows per fused emotion;
* per modality of the model (`audio`, `face`): `{modality}_emotion` and
  `{modality}_probabilities` (label -> probability), by the same rule;
* `face` (models with the face modality): "found", or "no face" when no
  window holds a face (none found in any frame, or an audio-only file); then
  `face_emotion` and `face_probabilities` are null (the voice decides);
* `windows`: per window its start and end, fused emotion and probabilities,
  audio and face probabilities (lists in `labels` order; face null where no
  segment covering it holds a face), whether the face was found in it and in
  how many of its frames, and the attention it receives per modality;
* `segments`: every model input scored (first window, span, probabilities,
  attention received per window);
* `duration`, `num_windows`, `frames_decoded`, `face_found_rate`, `seconds`
  (wall time) and `realtime_factor` (seconds per second of media).

A built-in model (`mater_tf.builtin`, given by name) is checked against its
sha256 when loaded, and where its card names a face channel, a video's face
expression is classified window by window and shown beside the voice
(`mater_tf.serving.face_expression`; never fused with it):

* `face_expression`: the clip's face expression (labels, emotion,
  probabilities, windows with a face, the classifier-to-voice label mapping,
  and `fusion`, which says there is none); each window's
  `face_expression` holds its 7 probabilities (null where no face);
* `face`: "found" or "no face"; `model_sha256`: the built-in's checksum.

`write_prediction` writes it as `<name>.json`, the per-window timeline as
`<name>.csv` and the picture as `<name>.png`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mater_tf.config.model import learns_audio_frontend
from mater_tf.data import schema, synthetic
from mater_tf.errors import UserError
from mater_tf.serving.export import METADATA_FILE, metadata_path, read_export_metadata

CATCH_UP_WINDOWS = 8


def _is_export(folder: Path) -> bool:
    return (folder / "saved_model.pb").is_file() and metadata_path(folder).is_file()


def resolve_export(model_dir: str | Path) -> Path:
    """A SavedModel export folder, given it (either layout), a run folder that holds one, or a TF
    Serving model base (its highest version, the one TF Serving serves)."""
    model_dir = Path(model_dir)
    for candidate in (model_dir, model_dir / "export"):
        if _is_export(candidate):
            return candidate
    versions = sorted(
        (int(child.name), child)
        for child in (model_dir.iterdir() if model_dir.is_dir() else ())
        if child.name.isdigit() and _is_export(child)
    )
    if versions:
        return versions[-1][1]
    raise UserError(
        f"--model {model_dir}: no exported model there (expected saved_model.pb and {METADATA_FILE}, "
        "a run folder with export/, or a TF Serving base of numbered versions); train one with mater-tf "
        "train or make one with mater-tf export"
    )


KERAS_MODEL_FILE = "model.keras"  # a built-in's model: Keras' own format, no optimizer state


class _Signature:
    """A `tf.function` of one dict argument called as a SavedModel signature is: with keywords."""

    def __init__(self, function, specs: dict):
        self.function = function
        self.structured_input_signature = ((), specs)

    def __call__(self, **inputs):
        return self.function(inputs)


class KerasSignatures:
    """A `.keras` model answering as its SavedModel export would: `signatures["serving_default"]`
    and, where it attends, `signatures["serve_attention"]` (the export's own computations,
    `mater_tf.serving.export`). The built-in models ship this way: a third of the export's size
    (Keras' SavedModel export stores every weight twice, and three traced signatures)."""

    def __init__(self, path: Path, label_names):
        import tensorflow as tf

        import mater_tf.models  # noqa: F401 - registers MATER's classes with Keras
        from mater_tf.features.embedders import load_keras_model
        from mater_tf.serving.export import input_specs, serving_function

        model = load_keras_model(path, "mater-tf model", "reinstall or retrain it")
        specs = input_specs(model)
        predict = serving_function(model, label_names)
        self.signatures = {
            "serving_default": _Signature(tf.function(predict, input_signature=[specs]), specs)
        }
        if getattr(model, "_attention_scores", None):
            attention = model.attention_model()
            self.signatures["serve_attention"] = _Signature(
                tf.function(lambda inputs: attention(inputs, training=False), input_signature=[specs]), specs
            )


def resolve_model(model) -> tuple[Path, object]:
    """(export folder, built-in model or None) of `--model`: None = the default built-in; an
    existing path is an export, a run or a TF Serving base (`resolve_export`); otherwise the name
    of a built-in, whose files are checked against their sha256 first.

    Raises:
        UserError: a path with no export, an unknown name, or a damaged built-in.
    """
    from mater_tf import builtin

    name = builtin.default_name() if model is None else str(model)
    if model is not None and Path(name).exists():
        return resolve_export(name), None
    if not builtin.is_builtin(name):
        raise UserError(
            f"--model {name}: no such folder, and no built-in model of that name (the built-ins are "
            f"{', '.join(builtin.builtin_names())}; mater-tf models shows their cards); give a built-in's "
            "name, a run folder or an export"
        )
    model = builtin.get(name)
    if model.kind != "voice":
        raise UserError(
            f"--model {name}: the built-in {name} is a face channel shown beside a voice model, not a model "
            f"to predict with; leave out --model (the default, {builtin.default_name()}) to see both"
        )
    return builtin.verified_path(model), model


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

        import tensorflow as tf

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
        self.model = (
            tf.saved_model.load(str(self.export_dir))
            if (self.export_dir / "saved_model.pb").is_file()
            else KerasSignatures(self.export_dir / KERAS_MODEL_FILE, self.metadata["label_names"])
        )
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
        """Scores a whole clip (or stream) window by window; returns the result of the module doc.

        Args:
            source: the clip's path (or the stream's name, for the result).
            stride: windows between the starts of the model's inputs.
            block_windows: windows embedded together; 1 for live input, so each
                window is scored as soon as it completes (windows already waiting
                behind it, up to CATCH_UP_WINDOWS, join its block).
            windows: the windows to score (default: `self.windows(source)`).
            on_window: called as `on_window(window, segment)` after each window
                with the segment that ends at it (`SlidingScorer.live_output`).
            interruptible: Ctrl-C (KeyboardInterrupt) ends the reading and the
                windows read so far are scored (`result["interrupted"]` is True).

        Raises:
            MediaError: naming the file: unreadable, no audio, silent, or shorter
                than one window.
        """
        import time

        from mater_tf.data.extraction import SILENCE_PEAK
        from mater_tf.media import MediaError
        from mater_tf.serving.sliding import SlidingScorer

        started = time.perf_counter()
        scorer = SlidingScorer(self, stride)
        windows = self.windows(source) if windows is None else windows
        track_last, face_track_last, block, peak = None, None, [], 0.0
        expressions = []  # per window: the face expression's probabilities, or None

        def flush():
            nonlocal track_last, face_track_last, block
            if not block:
                return
            features, track_last = self.extractor.embed_windows(block, track_last)
            if self.face_expression is not None:
                rows, found, face_track_last = self.face_expression.classify_windows(block, face_track_last)
                expressions.extend(rows)
                if "face" not in self.modalities:  # the face found is the channel's (the model has none)
                    features.face_frames_found = found
                    features.face_valid = (found > 0).astype(np.int64)
            scorer.add(block, features)
            if on_window is not None:
                for offset, window in enumerate(block):
                    segment = scorer.live_output(window.index)
                    if self.face_expression is not None:
                        segment = {
                            **segment,
                            "face_expression": expressions[len(expressions) - len(block) + offset],
                        }
                    on_window(window, segment)
            block = []

        interrupted = False
        try:
            for window in windows:
                if len(window.samples):
                    peak = max(peak, float(np.abs(window.samples).max()))
                block.append(window)
                # A scorer that fell behind a live source scores the windows waiting as one block.
                if len(block) >= max(block_windows, CATCH_UP_WINDOWS) or (
                    len(block) >= block_windows and not window.backlog
                ):
                    flush()
            flush()
        except KeyboardInterrupt:
            if not interruptible:
                raise
            interrupted = True
            close = getattr(windows, "close", None)
            if close is not None:
                close()
        scorer.finish()
        if not scorer.count:
            raise MediaError(
                f"{source}: shorter than one {self.metadata['window_seconds']} s window (or no audio decoded)"
            )
        if peak < SILENCE_PEAK:
            raise MediaError(f"{source}: the audio is silent (peak below {SILENCE_PEAK})")
        if not interrupted and isinstance(source, str | Path) and Path(source).is_file():
            from mater_tf.media import check_not_truncated

            # The windows scored end within half a window of the audio's end (a last window less
            # than half full is not scored): prepare's half-window margin, plus that half window.
            check_not_truncated(source, scorer.ends[-1], self.metadata["window_seconds"])
        if self.modalities == ["face"] and not any(scorer.features["face_valid"]):
            # A face-only model has nothing to read: its "emotion" would be its bias alone.
            raise MediaError(
                f"{source}: no face found in any window (or no video), and this model reads only the face; "
                "give a video that shows the face"
            )
        result = {"clip": str(source), "model": self.model_name, **scorer.result()}
        if self.builtin is not None:
            result["model_sha256"] = self.builtin.sha256
        if self.face_expression is not None:
            self._add_face_expression(result, expressions)
        if interrupted:
            result["interrupted"] = True
        result["duration"] = round(scorer.ends[-1], 3)
        elapsed = time.perf_counter() - started
        result["seconds"] = round(elapsed, 3)
        result["realtime_factor"] = round(elapsed / max(result["duration"], 1e-9), 4)
        return result

    def _add_face_expression(self, result: dict, expressions: list) -> None:
        """The face channel beside the voice: per window and for the clip (never fused with the voice)."""
        for window, row in zip(result["windows"], expressions):
            window["face_expression"] = row
        result["face_expression"] = self.face_expression.summary(expressions, result["labels"])
        result["face"] = "found" if result["face_expression"]["emotion"] else "no face"


def output_names(paths, reserved=()) -> dict[str, str]:
    """A distinct output name per clip path (keyed by `str(path)`): its file name without suffix,
    or, where clips share that name, preceded by as many of its folders as tell them apart
    (`a_clip`, `b_clip`), with the suffix where only that differs (`clip.mp4`, `clip.wav`).

    No name is one of `reserved` (the run's own files) or, ignoring case (macOS and Windows
    file systems), another clip's: such a name gets a folder too, or a count (`a_clip_2`).
    """
    import os

    resolved = {str(path): Path(os.path.abspath(path)) for path in paths}
    taken = {name.casefold() for name in reserved}
    names = {}
    for key, path in resolved.items():
        rivals = [other for other in set(resolved.values()) if other.stem == path.stem and other != path]
        name = next(
            (
                _candidate(path, depth, suffix)
                for suffix in (False, True)
                for depth in range(len(path.parent.parts) + 1)
                if all(
                    _candidate(other, depth, suffix) != _candidate(path, depth, suffix) for other in rivals
                )
                and _candidate(path, depth, suffix).casefold() not in taken
            ),
            path.stem,
        )
        unique, count = name, 1
        while unique.casefold() in taken:
            count += 1
            unique = f"{name}_{count}"
        taken.add(unique.casefold())
        names[key] = unique
    return names


def _candidate(path: Path, depth: int, suffix: bool) -> str:
    """The file name (with or without suffix) preceded by its last `depth` folders, joined with '_'."""
    folders = (
        [part.strip("/\\") for part in path.parent.parts[len(path.parent.parts) - depth :]] if depth else []
    )
    return "_".join([folder for folder in folders if folder] + [path.name if suffix else path.stem])


def timeline_rows(result: dict) -> tuple[list[str], list[list]]:
    """The per-window timeline as CSV header and rows: start, end, fused emotion, fused / audio / face
    probabilities per label (empty where there is none), with a built-in's face channel the face
    expression's emotion and probabilities per class (shown beside the voice, not fused), face found,
    face frames found, frames."""
    labels, windows = result.get("labels", []), result.get("windows", [])
    header = ["start", "end", "emotion"]
    fields = [("probabilities", "fused"), ("audio_probabilities", "audio"), ("face_probabilities", "face")]
    fields = [(field, name) for field, name in fields if any(field in w for w in windows)]
    for _, name in fields:
        header += [f"{name}_{label}" for label in labels]
    face_labels = (result.get("face_expression") or {}).get("labels", [])
    if face_labels:
        header += ["face_expression"] + [f"face_expression_{label}" for label in face_labels]
    header += ["face_found", "face_frames_found", "frames"]
    rows = []
    for window in windows:
        row = [window["start"], window["end"], window["emotion"]]
        for field, _ in fields:
            row += window.get(field) or [""] * len(labels)
        if face_labels:
            expression = window.get("face_expression")
            best = face_labels[int(np.argmax(expression))] if expression else ""
            row += [best] + (expression or [""] * len(face_labels))
        row += [int(window["face_found"]), window["face_frames_found"], window["frames"]]
        rows.append(row)
    return header, rows


def write_prediction(result: dict, out_dir: str | Path, name: str | None = None) -> tuple[Path, Path, Path]:
    """Writes `<name>.json`, `<name>.csv` (the per-window timeline) and `<name>.png` into `out_dir`
    (name: the clip's file name without suffix by default; see `output_names` for several clips)."""
    import csv

    from mater_tf.reporting.timeline import timeline_png

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = name or Path(result["clip"]).stem
    json_path, csv_path, png_path = (out_dir / f"{stem}.{suffix}" for suffix in ("json", "csv", "png"))
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    header, rows = timeline_rows(result)
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    png_path.write_bytes(timeline_png(result))
    return json_path, csv_path, png_path
