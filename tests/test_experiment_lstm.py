"""The LSTM baseline experiments are the paper's: no positional encoding."""

from pathlib import Path

from mater_tf.config import load_config

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_lstm_experiments_have_no_positional_encoding():
    configs = {path: load_config(path) for path in sorted(EXPERIMENTS.rglob("*.yaml"))}
    lstm = {path: config for path, config in configs.items() if config.model.encoder == "lstm"}
    # The paper's two corpora and the synthetic grid each have one.
    assert len(lstm) >= 3, sorted(lstm)
    with_pe = [
        str(path.relative_to(EXPERIMENTS))
        for path, config in lstm.items()
        if config.model.positional_encoding
    ]
    assert with_pe == []
