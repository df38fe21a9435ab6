"""Every experiment YAML loads and builds its model; reports against hand-made fold results."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from mater_tf.config import load_config
from mater_tf.data import schema
from mater_tf.errors import UserError
from mater_tf.models import build_model
from mater_tf.reporting.cv_report import cv_report
from mater_tf.reporting.paper import TABLE1, TABLE3
from mater_tf.reporting.paper_tables import paper_tables
from mater_tf.training.cv import summarize

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
YAMLS = sorted(p for p in EXPERIMENTS.rglob("*.yaml") if p.name not in ("ravdess.yaml", "cremad.yaml"))


def test_every_paper_row_has_an_experiment():
    configs = [load_config(p) for p in YAMLS]
    assert {c.paper.table1 for c in configs} >= set(TABLE1)
    assert {c.paper.table3 for c in configs} >= set(TABLE3)
    assert any(c.model.encoder == "lstm" for c in configs)
    for corpus in ("ravdess", "cremad"):
        modalities = {tuple(c.model.modalities) for c in configs if c.name.startswith(corpus)}
        assert {("audio",), ("face",), ("audio", "face")} <= modalities


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_experiment_loads_and_builds(path):
    text = path.read_text()
    assert text.startswith("#") and "mater-tf " in text  # opens with what it reproduces and the command
    config = load_config(path)
    # Experiments in a folder of their kind carry its name (synthetic_*, builtin_*: the built-in
    # model's run folder is named for it).
    kinds = ("synthetic", "builtin")
    assert config.name == (f"{path.parent.name}_{path.stem}" if path.parent.name in kinds else path.stem)
    if config.paper.table1:
        dataset, windows, seconds, pe, mhsa, _ = TABLE1[config.paper.table1]
        assert (config.data.num_windows, config.data.window_seconds) == (windows, seconds)
        assert (config.model.positional_encoding, config.model.attention) == (pe, mhsa)
        assert config.cv.num_folds == (12 if dataset == "RAVDESS" else 10)
    windows = config.data.num_windows or config.data.synthetic.num_windows
    dim = 512 if config.data.source != "synthetic" else config.data.synthetic.audio_dim
    frames = round(100 * (config.data.window_seconds or 0.5))  # VGGish log-mel: 100 frames per second
    model = build_model(config.model, dim, dim, 6, windows, log_mel_frames=frames)
    inputs = {tensor.name for tensor in model.inputs}
    assert ("audio_log_mel" in inputs) == (
        config.model.audio_frontend != "none" and "audio" in config.model.modalities
    )
    outputs = {"logits"} | {f"{m}_logits" for m in config.model.modalities}
    if config.model.ensemble > 1:  # and every member's, for their losses
        outputs |= {schema.member_key(key) for key in outputs}
    assert set(model.output_names) == outputs
    assert model.modalities == tuple(config.model.modalities)


def test_base_chain_and_its_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(UserError, match="loops back"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(UserError, match="base 'missing.yaml' not found"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: quickstart\nmodel:\n  num_heads: 2\n")
    config = load_config(tmp_path / "d.yaml")
    assert config.model.num_heads == 2 and config.model.d_model == 64  # the preset's width
    (tmp_path / "e.yaml").write_text("paper:\n  table1: ravdess-99x1-pe\n")
    with pytest.raises(UserError, match="not a Table 1 row"):
        load_config(tmp_path / "e.yaml")


def make_cv_dir(
    root, name, corpus, accuracies, modalities=("audio", "face"), table1="", table3="", overrides=()
):
    """A finished cv directory with hand-made fold results (accuracies per output per fold)."""
    labels = ["a", "b"]
    cv_dir = root / name
    config = load_config(
        "quickstart",
        [f"model.modalities={','.join(modalities)}", f"paper.table1={table1}", f"paper.table3={table3}"]
        + list(overrides),
    )
    cv_dir.mkdir(parents=True)
    (cv_dir / "config.yaml").write_text(yaml.safe_dump(dict(config.to_dict(), name=name)))
    folds = len(next(iter(accuracies.values())))
    for fold in range(folds):
        test = {}
        for output, values in accuracies.items():
            correct = round(values[fold] * 10)
            matrix = [
                [correct // 2 + correct % 2, 5 - correct // 2 - correct % 2],
                [5 - correct // 2, correct // 2],
            ]
            test[output] = {
                "accuracy": values[fold],
                "unweighted_accuracy": values[fold],
                "confusion_matrix": matrix,
                "num_clips": 10,
            }
        fold_dir = cv_dir / f"fold_{fold:02d}"
        fold_dir.mkdir()
        (fold_dir / "metrics.json").write_text(
            json.dumps(
                {
                    "experiment": name,
                    "corpus": corpus,
                    "synthetic": False,
                    "label_names": labels,
                    "test_fold": fold,
                    "test": test,
                }
            )
        )
        (fold_dir / "split.json").write_text(json.dumps({"num_windows": 8, "window_seconds": 0.5}))
    summarize(cv_dir)
    return cv_dir


def test_report_against_hand_made_fold_results(tmp_path):
    full = make_cv_dir(
        tmp_path,
        "ravdess_8x0.5_pe_mhsa",
        "ravdess",
        {"av": [0.8, 0.7, 0.9], "audio": [0.6, 0.5, 0.7], "face": [0.5, 0.6, 0.4]},
        table1="ravdess-8x0.5-pe-mhsa",
        table3="ravdess-attention",
    )
    alone = make_cv_dir(
        tmp_path, "audio_only", "ravdess", {"av": [0.6, 0.6, 0.6]}, ("audio",), table3="ravdess-attention"
    )
    markdown = paper_tables([full, alone])
    row = next(line for line in markdown.splitlines() if line.startswith("| RAVDESS | 8 |"))
    assert "| 76.3 | 80.0 +- 10.0 (3 folds, n=30) | +3.7 |" in row  # mean 0.8, sample std 0.1; 80.0 - 76.3
    table3 = next(line for line in markdown.splitlines() if line.startswith("| RAVDESS | ✓ | 59.2"))
    assert "60.0 +- 0.0 (3 folds, n=30) (alone)" in table3  # the audio-only run fills A
    assert "50.0 +- 10.0 (3 folds, n=30) (branch)" in table3  # the AV run's face branch fills V
    assert "76.3 | 80.0 +- 10.0 (3 folds, n=30) |" in table3
    summary = json.loads((full / "cv_metrics.json").read_text())
    assert summary["outputs"]["av"]["pooled"]["num_clips"] == 30
    np.testing.assert_allclose(summary["outputs"]["av"]["accuracy"]["std"], 0.1)


def test_one_fold_shows_no_spread_and_a_branch_that_never_trained_no_figure(tmp_path):
    one = make_cv_dir(
        tmp_path,
        "cremad_small",
        "cremad",
        {"av": [0.5], "audio": [0.3], "face": [0.2]},
        table3="cremad-attention",
    )
    fold = json.loads((one / "fold_00" / "metrics.json").read_text())
    fold["test"]["face"].update(
        accuracy=None, unweighted_accuracy=None, not_trained="no training clip has a face"
    )
    (one / "fold_00" / "metrics.json").write_text(json.dumps(fold))
    summary = summarize(one)
    assert summary["outputs"]["av"]["accuracy"]["std"] is None  # one fold: no spread, not 0
    assert summary["outputs"]["face"]["folds_not_trained"] == 1
    table3 = next(line for line in paper_tables([one]).splitlines() if line.startswith("| CREMA-D | ✓"))
    assert "50.0 (1 fold, n=10) |" in table3 and "+- 0.0" not in table3
    assert "- (branch never trained: no training clip had the modality) (branch)" in table3
    cv_report(one, summary)
    text = (one / "report.md").read_text()
    assert "| AV (fused) | 50.0 (1 fold) | 50.0 (1 fold) | 10 |" in text
    assert "not scored in 1 folds: no training clip had a face" in text


def test_cv_report_states_the_numbers_and_the_protocol(tmp_path):
    overrides = [
        "model.audio_frontend=small",
        "model.log_mel_normalization=band",
        "model.window_pooling=concat",
        "model.ensemble=3",
        "cv.validation=false",
        "train.early_stopping_patience=0",
    ]
    cv_dir = make_cv_dir(
        tmp_path, "dev", "ravdess", {"av": [0.5, 0.3, 0.4]}, ("audio",), "", "ravdess-attention", overrides
    )
    cv_report(cv_dir, summarize(cv_dir))
    text = (cv_dir / "report.md").read_text()
    assert "| AV (fused) | 40.0 +- 10.0 | 40.0 +- 10.0 |" in text  # hand-made: mean 0.4, sample std 0.1
    assert "| 1 | 30.0 (n=10) |" in text  # every figure with its n
    assert "| AV (fused) | 40.0 +- 10.0 | 40.0 +- 10.0 | 30 |" in text
    assert (
        "audio front end small on band-normalised log-mel, windows side by side (window_pooling concat), "
        "a deep ensemble of 3 members (their probabilities averaged)." in text
    )
    assert "Validation subjects: none; every other fold trains for 40 epochs" in text
    assert (cv_dir / "fold_accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_cv_report_names_band_statistics_other_than_the_default(tmp_path):
    overrides = ["model.audio_frontend=stats", "model.band_statistics=mean,change_std"]
    cv_dir = make_cv_dir(
        tmp_path, "dev", "ravdess", {"av": [0.5, 0.3, 0.4]}, ("audio",), "", "ravdess-attention", overrides
    )
    cv_report(cv_dir, summarize(cv_dir))
    text = (cv_dir / "report.md").read_text()
    assert "audio front end stats (band statistics mean, change_std) on band-normalised log-mel" in text


def test_cv_report_names_no_audio_front_end_for_a_model_without_an_audio_branch(tmp_path):
    overrides = ["model.audio_frontend=small", "model.modalities=face"]
    cv_dir = make_cv_dir(
        tmp_path, "dev", "ravdess", {"av": [0.5, 0.3, 0.4]}, ("audio",), "", "ravdess-attention", overrides
    )
    cv_report(cv_dir, summarize(cv_dir))
    text = (cv_dir / "report.md").read_text()
    assert "modalities face," in text
    assert "audio front end" not in text


def test_report_refuses_mixed_corpora_and_unfinished_runs(tmp_path, capsys):
    from mater_tf.cli.main import main

    a = make_cv_dir(tmp_path, "a", "ravdess", {"av": [0.5, 0.6]})
    b = make_cv_dir(tmp_path, "b", "cremad", {"av": [0.5, 0.6]})
    assert main(["report", str(a), str(b)]) == 2
    assert "different corpora (cremad, ravdess)" in capsys.readouterr().err
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "config.yaml").write_text("name: c\n")
    assert main(["report", str(tmp_path / "c")]) == 2
    assert "has not finished" in capsys.readouterr().err
