"""Writes mater_before_issue24_*.keras and their outputs, with the code as it was before issue 24.

Run once, at commit 0086b9b (MATER built in one constructor in models/mater.py, the front ends
in layers/frontends.py), from the repository root:  python tests/data/make_mater_before_issue24.py
Each model is built through `mater_tf.models.build_model` from a `ModelConfig`, as training
builds it. The test that loads the files with today's code compares against the outputs saved
here, which the old code computed.
"""

import os

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mater_tf.config import ModelConfig  # noqa: E402
from mater_tf.models import build_model  # noqa: E402

HERE = Path(__file__).resolve().parent
CLIPS, WINDOWS, FRAMES, CLASSES = 3, 4, 12, 5
SMALL = {"num_layers": 2, "d_model": 8, "num_heads": 2, "ff_dim": 16, "head_hidden_dim": 8}
# name -> (ModelConfig fields, audio_dim, face_dim): the built-in's shape (stats front end,
# utterance functionals, concat pooling, an ensemble, freq warp), an audio-visual model on
# VGGish- and VGG-Face-like embeddings, a small conv front end ensemble beside a face branch,
# and the LSTM baseline.
MODELS = {
    "stats_utterance_ensemble": (
        {
            "modalities": ["audio"],
            "audio_frontend": "stats",
            "utterance_functionals": True,
            "window_pooling": "concat",
            "ensemble": 2,
            "num_layers": 1,
            "augment": {"freq_warp": 0.1},
        },
        128,
        1,
    ),
    "embeddings_av": ({"modalities": ["audio", "face"]}, 128, 64),
    "small_frontend_ensemble": (
        {
            "modalities": ["audio", "face"],
            "audio_frontend": "small",
            "audio_frontend_filters": [4, 8],
            "audio_frontend_pooling": "band_stats",
            "ensemble": 2,
            "num_layers": 1,
            "augment": {"gain_db": 3.0, "time_masks": 1},
        },
        128,
        16,
    ),
    "lstm_face": ({"modalities": ["face"], "encoder": "lstm", "num_layers": 1}, 128, 16),
}


def inputs_for(model, rng) -> dict:
    valid = np.array([[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]], np.float32)
    shapes = {
        "audio_log_mel": (CLIPS, WINDOWS, FRAMES, 64),
        "audio_voice_descriptors": (CLIPS, WINDOWS, FRAMES, 18),
        "audio_embedding": (CLIPS, WINDOWS, model.audio_dim),
        "face_embedding": (CLIPS, WINDOWS, model.face_dim),
    }
    inputs = {}
    for tensor in model.inputs:
        name = tensor.name
        inputs[name] = valid if name.endswith("_valid") else rng.normal(size=shapes[name]).astype(np.float32)
    return inputs


def main():
    rng = np.random.default_rng(24)
    for name, (fields, audio_dim, face_dim) in MODELS.items():
        augment = fields.pop("augment", {})
        config = ModelConfig(**{**SMALL, **fields})
        config.augment = dataclasses.replace(config.augment, **augment)
        config.validate()
        model = build_model(config, audio_dim, face_dim, CLASSES, num_windows=WINDOWS, log_mel_frames=FRAMES)
        # Random weights (positive variances), so a weight loaded into the wrong place shows.
        for weight in model.weights:
            values = rng.normal(scale=0.3, size=weight.shape)
            if "variance" in weight.path:
                values = np.abs(values) + 0.5
            if weight.path.endswith("count"):
                values = np.full(weight.shape, 100)
            weight.assign(values.astype(weight.dtype))
        # A Normalization layer keeps a copy of its statistics, refreshed by adapt() or loading.
        for layer in model._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.Normalization):
                layer.finalize_state()
        inputs = inputs_for(model, rng)
        outputs = {key: np.asarray(value) for key, value in model(inputs, training=False).items()}
        scores = {}
        if config.encoder == "transformer":
            scores = {key: np.asarray(value) for key, value in model.attention_model()(inputs).items()}
        model.save(HERE / f"mater_before_issue24_{name}.keras")
        np.savez(
            HERE / f"mater_before_issue24_{name}.npz",
            **{f"input/{k}": v for k, v in inputs.items()},
            **{f"output/{k}": v for k, v in outputs.items()},
            **{f"attention/{k}": v for k, v in scores.items()},
        )


if __name__ == "__main__":
    main()
