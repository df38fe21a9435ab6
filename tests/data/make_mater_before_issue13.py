"""Writes mater_before_issue13.keras and its outputs, with the code as it was before issue 13.

Run once, at commit c1cb82d (EncoderBlock on keras.layers.MultiHeadAttention), from the
repository root:  python tests/data/make_mater_before_issue13.py
The test that loads the file with today's code compares against the outputs saved here,
which the old code computed.
"""

import os

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mater_tf.models import MATER  # noqa: E402

HERE = Path(__file__).resolve().parent


def main():
    rng = np.random.default_rng(13)
    model = MATER(6, 4, 5, num_windows=5, num_layers=2, d_model=8, num_heads=2, ff_dim=16, head_hidden_dim=8)
    inputs = {
        "audio_embedding": rng.normal(size=(3, 5, 6)).astype(np.float32),
        "face_embedding": rng.normal(size=(3, 5, 4)).astype(np.float32),
        "audio_valid": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], np.float32),
        "face_valid": np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 0, 0, 0]], np.float32),
    }
    # Random non-zero biases too, so a bias loaded into the wrong place shows.
    for weight in model.weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype(np.float32))
    outputs = {key: np.asarray(value) for key, value in model(inputs, training=False).items()}
    scores = {key: np.asarray(value) for key, value in model.attention_model()(inputs).items()}
    model.save(HERE / "mater_before_issue13.keras")
    np.savez(
        HERE / "mater_before_issue13.npz",
        **{f"input/{k}": v for k, v in inputs.items()},
        **{f"output/{k}": v for k, v in outputs.items()},
        **{f"attention/{k}": v for k, v in scores.items()},
    )


if __name__ == "__main__":
    main()
