"""The model's T-window input sliding over a whole clip or stream, and the timeline it gives.

A model takes T windows of d seconds (its training records' windowing). Over
a clip of N present windows, the input starts at windows 0, s, 2s, ... (stride
s, default 1) while it fits (k + T <= N), and once more at N - T so the last
windows are covered; a clip shorter than T windows is one input padded with
masked windows, exactly as its training record would be. Each input (a
"segment") gets the fused and per-modality probabilities and the attention
of the model.

Combining overlapping predictions: a window's probabilities (fused, audio,
face) are the plain mean of those of every segment that contains it (up to
T of them with stride 1; face: only segments holding a face). Its attention
is the mean, over those segments, of the attention it receives in the last
layer (mean over heads and over the segment's present query windows).

Clip-level rule: the clip's emotion is the one with the highest mean fused
probability over all its windows (each window counting once); `votes` counts
the windows whose own fused emotion is each label. Per modality likewise
(face: over the windows with face probabilities).

Live (`live_output`): when window w completes, the segment that ends at w is
scored at once (windows max(0, w - T + 1) .. w; before T windows have arrived,
the first w + 1 windows, the rest masked, as a short clip). With stride 1 the
full ones are exactly the segments of the offline timeline.
"""

from __future__ import annotations

import numpy as np

from mater_tf.data import schema

RULE = (
    "clip emotion = highest mean fused probability over all windows; a window's probabilities = mean over "
    "the model inputs (T windows each) that contain it"
)
# The probabilities combined per window: (timeline key, field of a segment and of a window).
FIELDS = (("fused", "probabilities"), ("audio", "audio_probabilities"), ("face", "face_probabilities"))


class SlidingScorer:
    """Collects window features as they arrive and scores the segments they complete.

    Args:
        predictor: a loaded `mater_tf.serving.predictor.Predictor`.
        stride: windows between segment starts.
    """

    def __init__(self, predictor, stride: int = 1):
        self.predictor = predictor
        self.num_windows = predictor.metadata["num_windows"]
        self.stride = stride
        self.labels = list(predictor.metadata["label_names"])
        self.modalities = list(predictor.modalities)
        self.features = {
            "audio_embedding": [],
            "face_embedding": [],
            "face_valid": [],
            "face_frames_found": [],
            "frames": [],
            "audio_log_mel": [],
            "audio_voice_descriptors": [],
        }
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.segments: list[dict] = []
        self.next_start = 0  # the next segment start on the stride grid

    @property
    def count(self) -> int:
        return len(self.starts)

    def add(self, windows, features) -> list[dict]:
        """Appends the features of consecutive windows; returns the segments they complete, scored."""
        for window in windows:
            self.starts.append(window.start)
            self.ends.append(window.start + window.inside)
        for name in self.features:
            value = getattr(features, name)
            if value is not None:
                self.features[name].extend(value)
        ready = []
        while self.next_start + self.num_windows <= self.count:
            ready.append(self.next_start)
            self.next_start += self.stride
        return self._score(ready)

    def finish(self) -> list[dict]:
        """Scores what the end of the stream completes: the last segment (N - T), or the short clip's one."""
        if not self.count:
            return []
        last = max(0, self.count - self.num_windows)
        if any(segment["first_window"] == last for segment in self.segments):
            return []
        return self._score([last])

    def live_output(self, window: int) -> dict:
        """The segment ending at `window` (scored now if it is not one already scored)."""
        first = max(0, window - self.num_windows + 1)
        last = min(first + self.num_windows, window + 1)
        for segment in self.segments:
            if segment["first_window"] == first and segment["windows"] == last - first:
                return segment
        return self._score([first], until=window + 1, keep=False)[0]

    def _inputs(self, firsts, until) -> dict:
        import tensorflow as tf

        span = self.num_windows
        audio_valid = np.zeros((len(firsts), span), np.float32)
        arrays = {}
        names = schema.input_names(
            self.modalities, self.predictor.learns_audio, self.predictor.reads_voice_descriptors
        )
        for name in names:
            if name.endswith("_valid"):
                continue
            rows = self.features[name]
            sample = np.asarray(rows[0])
            arrays[name] = np.zeros((len(firsts), span, *sample.shape), np.float32)
        face_valid = np.zeros((len(firsts), span), np.float32)
        for row, first in enumerate(firsts):
            stop = min(first + span, until)
            audio_valid[row, : stop - first] = 1.0
            face_valid[row, : stop - first] = self.features["face_valid"][first:stop]
            for name, array in arrays.items():
                rows = self.features[name]
                array[row, : stop - first] = np.asarray(rows[first:stop])
        # Only the masks of the model's own modalities: a signature refuses any other input.
        if "audio" in self.modalities:
            arrays["audio_valid"] = audio_valid
        if "face" in self.modalities:
            arrays["face_valid"] = face_valid
        return {name: tf.constant(value) for name, value in arrays.items()}, face_valid

    def _score(self, firsts, until=None, keep=True) -> list[dict]:
        if not firsts:
            return []
        until = self.count if until is None else until
        inputs, face_valid = self._inputs(firsts, until)
        model = self.predictor.model
        outputs = {k: v.numpy() for k, v in model.signatures["serving_default"](**inputs).items()}
        attention = {}
        if "serve_attention" in model.signatures:
            scores = {k: v.numpy() for k, v in model.signatures["serve_attention"](**inputs).items()}
            for modality in self.modalities:
                layers = sorted(k for k in scores if k.startswith(f"{modality}_attention_"))
                if layers:
                    attention[modality] = scores[layers[-1]].mean(axis=1)  # [B, T, T], mean over heads
        segments = []
        for row, first in enumerate(firsts):
            windows = min(first + self.num_windows, until) - first
            has_face = "face" in self.modalities and bool(face_valid[row].any())
            segment = {
                "first_window": int(first),
                "windows": int(windows),
                "start": round(self.starts[first], 3),
                "end": round(self.ends[first + windows - 1], 3),
                "probabilities": outputs["probabilities"][row].tolist(),
                "audio_probabilities": outputs["audio_probabilities"][row].tolist()
                if "audio" in self.modalities
                else None,
                "face_probabilities": outputs["face_probabilities"][row].tolist() if has_face else None,
            }
            received = {}
            for modality, maps in attention.items():
                if modality == "face" and not has_face:
                    continue
                valid = np.ones(windows) if modality == "audio" else face_valid[row, :windows]
                queries = maps[row, :windows, :windows][valid > 0]
                received[modality] = (queries.mean(axis=0) * (valid > 0)).tolist()
            segment["attention_received"] = received
            segments.append(segment)
        if keep:
            self.segments.extend(segments)
        return segments

    def result(self) -> dict:
        """The timeline: per window combined probabilities, clip-level emotion by `RULE`, the segments."""
        labels, count = self.labels, self.count
        sums = {key: np.zeros((count, len(labels))) for key in ("fused", "audio", "face")}
        covers = {key: np.zeros(count) for key in sums}
        attention = {m: np.zeros(count) for m in self.modalities}
        attention_covers = {m: np.zeros(count) for m in self.modalities}
        for segment in self.segments:
            span = slice(segment["first_window"], segment["first_window"] + segment["windows"])
            for key, field in FIELDS:
                if segment.get(field) is not None:
                    sums[key][span] += np.asarray(segment[field])
                    covers[key][span] += 1
            for modality, received in segment["attention_received"].items():
                attention[modality][span] += np.asarray(received)
                attention_covers[modality][span] += 1
        face_valid = np.asarray(self.features["face_valid"], np.int64)
        windows = []
        for index in range(count):
            entry = {
                "index": index,
                "start": round(self.starts[index], 3),
                "end": round(self.ends[index], 3),
            }
            for key, field in FIELDS:
                if key != "fused" and key not in self.modalities:
                    continue
                entry[field] = (
                    (sums[key][index] / covers[key][index]).round(4).tolist() if covers[key][index] else None
                )
            entry["emotion"] = (
                labels[int(np.argmax(entry["probabilities"]))] if entry["probabilities"] else None
            )
            entry["face_found"] = bool(face_valid[index]) if len(face_valid) else False
            entry["face_frames_found"] = int(self.features["face_frames_found"][index])
            entry["frames"] = int(self.features["frames"][index])
            entry["attention"] = {
                m: round(float(attention[m][index] / attention_covers[m][index]), 4)
                for m in self.modalities
                if attention_covers[m][index] and (m == "audio" or face_valid[index])
            }
            windows.append(entry)
        result = {
            "labels": labels,
            "rule": RULE,
            "window_seconds": self.predictor.metadata["window_seconds"],
            "model_windows": self.num_windows,
            "stride_windows": self.stride,
            "num_windows": count,
            "num_segments": len(self.segments),
        }
        for key, field in FIELDS:
            if key != "fused" and key not in self.modalities:
                continue
            rows = [w[field] for w in windows if w[field] is not None]
            prefix = "" if key == "fused" else f"{key}_"
            if not rows:
                result[f"{prefix}emotion"], result[f"{prefix}probabilities"] = None, None
                continue
            mean = np.mean(rows, axis=0)
            result[f"{prefix}emotion"] = labels[int(np.argmax(mean))]
            result[f"{prefix}probabilities"] = dict(zip(labels, mean.round(4).tolist()))
        result["votes"] = {label: sum(1 for w in windows if w["emotion"] == label) for label in labels}
        frames = int(np.sum(self.features["frames"])) if self.features["frames"] else 0
        found = int(np.sum(self.features["face_frames_found"])) if self.features["face_frames_found"] else 0
        if "face" in self.modalities:
            result["face"] = "found" if face_valid.any() else "no face"
        result["frames_decoded"] = frames
        result["face_found_rate"] = round(found / frames, 4) if frames else None
        result["windows"] = windows
        result["segments"] = self.segments
        return result
