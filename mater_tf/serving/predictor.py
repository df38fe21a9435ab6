"""Prediction on raw clips with an exported model: which emotion, when, from which modality.

The export's `mater_tf.json` says how its training records were made
(windowing, embedders with their weights' checksums), and the clip is
extracted exactly the same way. Per clip the result (written as JSON) holds:

* `emotion`, `probabilities`: the fused decision of the whole clip (with no
  face, the voice's alone);
* per modality of the model (`audio`, `face`): `{modality}_emotion` and
  `{modality}_probabilities` (label -> probability) of that branch alone;
* `face` (models with the face modality): "found", or "no face" when no
  window of the clip holds a face (none found in any frame, or an audio-only
  file). Then `face_emotion` and `face_probabilities` are null and the face
  attention is left out: a face branch that saw nothing has no verdict;
* `windows`: per window its start, whether audio and face are present, the
  frames in which the face was found, and the model's probabilities when it
  sees that window alone (every other window masked), per modality present
  there, so "when" and "from which modality" are read off the same network
  that made the clip decision;
* `attention`: the attention weights of every layer (models with attention).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mater_tf.data import schema
from mater_tf.errors import UserError
from mater_tf.serving.export import METADATA_FILE, read_export_metadata


def resolve_export(model_dir: str | Path) -> Path:
    """A SavedModel export folder, given it or a run folder that holds one."""
    model_dir = Path(model_dir)
    for candidate in (model_dir, model_dir / "export"):
        if (candidate / "saved_model.pb").is_file() and (candidate / METADATA_FILE).is_file():
            return candidate
    raise UserError(
        f"--model {model_dir}: no exported model there (expected saved_model.pb and {METADATA_FILE}, "
        "or a run folder with export/); train one with mater-tf train or make one with mater-tf export"
    )


class Predictor:
    """Loads an export once; `predict(path)` extracts and scores one clip.

    Args:
        model_dir: an export folder or a run folder.
        audio_embedder / face_embedder: specs overriding those recorded at
            prepare time (weights moved); their checksums must still match.
    """

    def __init__(self, model_dir, audio_embedder: str | None = None, face_embedder: str | None = None):
        import tensorflow as tf

        from mater_tf.extraction import build_extractor

        self.export_dir = resolve_export(model_dir)
        self.metadata = read_export_metadata(self.export_dir)
        self.model = tf.saved_model.load(str(self.export_dir))
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
        self.learns_audio = self.metadata.get("audio_frontend", "none") != "none"
        self.extractor, info = build_extractor(
            self.metadata["num_windows"],
            self.metadata["window_seconds"],
            modalities,
            face_spec,
            audio_spec,
            keep_log_mel=self.learns_audio,
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

    def _inputs(self, record, valid_override=None) -> dict:
        """The model's inputs for one clip; `valid_override` [k, T] makes k masked copies."""
        import tensorflow as tf

        inputs = {}
        for name in schema.input_names(self.modalities, self.learns_audio):
            value = getattr(record, name)[None].astype(np.float32)
            if valid_override is not None:
                value = (
                    value * valid_override
                    if name.endswith("_valid")
                    else np.repeat(value, len(valid_override), 0)
                )
            inputs[name] = tf.constant(value, tf.float32)
        return inputs

    def predict(self, path: str | Path) -> dict:
        """Extracts one clip and returns the result described in the module doc."""
        extraction = self.extractor.extract(str(path), Path(path).stem)
        record = extraction.record
        names = self.metadata["label_names"]
        clip = {
            k: v.numpy() for k, v in self.model.signatures["serving_default"](**self._inputs(record)).items()
        }
        windows = self.metadata["num_windows"]
        probes = {
            k: v.numpy()
            for k, v in self.model.signatures["serving_default"](
                **self._inputs(record, np.eye(windows))
            ).items()
        }
        result = {
            "clip": str(path),
            "model": str(self.export_dir),
            "labels": names,
            "emotion": names[int(clip["class_id"][0])],
            "probabilities": dict(zip(names, clip["probabilities"][0].round(4).tolist())),
            "window_seconds": self.metadata["window_seconds"],
            "duration": round(record.duration, 3),
            "face_found_rate": extraction.face_found_rate,
            "windows": [],
        }
        has_face = bool(record.face_valid.any())
        for modality in self.modalities:
            if modality == "face" and not has_face:
                result["face_emotion"], result["face_probabilities"] = None, None
                continue
            scores = clip[f"{modality}_probabilities"][0]
            result[f"{modality}_emotion"] = names[int(np.argmax(scores))]
            result[f"{modality}_probabilities"] = dict(zip(names, scores.round(4).tolist()))
        if "face" in self.modalities:
            result["face"] = "found" if has_face else "no face"
        for window in range(windows):
            entry = {
                "start": round(window * self.metadata["window_seconds"], 3),
                "audio_present": bool(record.audio_valid[window]),
                "face_present": bool(record.face_valid[window]),
                "face_frames_found": int(record.face_frames_found[window]),
            }
            for modality in self.modalities:
                if getattr(record, f"{modality}_valid")[window]:
                    scores = probes[f"{modality}_probabilities"][window]
                    entry[f"{modality}_probabilities"] = scores.round(4).tolist()
            result["windows"].append(entry)
        if "serve_attention" in self.model.signatures:
            attention = self.model.signatures["serve_attention"](**self._inputs(record))
            result["attention"] = {
                k: v.numpy()[0].round(4).tolist()
                for k, v in sorted(attention.items())
                if has_face or not k.startswith("face_")
            }
        return result


def output_names(paths) -> dict[str, str]:
    """A distinct output name per clip path (keyed by `str(path)`): its file name without suffix,
    or, where clips share that name, preceded by as many of its folders as tell them apart
    (`a_clip`, `b_clip`), with the suffix where only that differs (`clip.mp4`, `clip.wav`)."""
    import os

    resolved = {str(path): Path(os.path.abspath(path)) for path in paths}
    names = {}
    for key, path in resolved.items():
        rivals = [other for other in set(resolved.values()) if other.stem == path.stem and other != path]
        names[key] = next(
            _candidate(path, depth, suffix)
            for suffix in (False, True)
            for depth in range(len(path.parent.parts) + 1)
            if all(_candidate(other, depth, suffix) != _candidate(path, depth, suffix) for other in rivals)
        )
    return names


def _candidate(path: Path, depth: int, suffix: bool) -> str:
    """The file name (with or without suffix) preceded by its last `depth` folders, joined with '_'."""
    folders = (
        [part.strip("/\\") for part in path.parent.parts[len(path.parent.parts) - depth :]] if depth else []
    )
    return "_".join([folder for folder in folders if folder] + [path.name if suffix else path.stem])


def write_prediction(result: dict, out_dir: str | Path, name: str | None = None) -> tuple[Path, Path]:
    """Writes `<name>.json` and `<name>.png` (the timeline) into `out_dir` (name: the clip's file name
    without suffix by default; see `output_names` for several clips)."""
    from mater_tf.reporting.timeline import timeline_png

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = name or Path(result["clip"]).stem
    json_path, png_path = out_dir / f"{stem}.json", out_dir / f"{stem}.png"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    png_path.write_bytes(timeline_png(result))
    return json_path, png_path
