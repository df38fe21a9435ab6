"""Subject-disjoint k-fold cross-validation (paper section 3.1).

    <cv dir>/config.yaml     resolved config (written first)
    <cv dir>/folds.json      subjects of every fold and their clip counts (written before training)
    <cv dir>/fold_XX/        one run directory per test fold (see trainer.py)
    <cv dir>/cv_metrics.json per-fold and mean +- std accuracy for AV, audio and face

Finished folds are kept: running the same command again trains only the
folds that are missing or unfinished.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from mater_tf.config import ExperimentConfig
from mater_tf.data import folds, records
from mater_tf.errors import UserError
from mater_tf.reporting.report import cv_report
from mater_tf.training import trainer
from mater_tf.training.metrics import classification_metrics

log = logging.getLogger(__name__)

FOLDS_FILE = "folds.json"
SUMMARY_FILE = "cv_metrics.json"


def fold_dir(cv_root: Path, fold: int) -> Path:
    return Path(cv_root) / f"fold_{fold:02d}"


def write_fold_assignment(
    cv_root: Path, index: records.RecordIndex, fold_subjects: list, validation: bool = True
) -> None:
    clips_per_subject = collections.Counter(index.subjects)
    records.write_json(
        Path(cv_root) / FOLDS_FILE,
        {
            "num_folds": len(fold_subjects),
            "validation": (
                "the fold after the test fold (wrapping); never the test fold"
                if validation
                else "none: every fold but the test fold trains (cv.validation=false)"
            ),
            "folds": [
                {
                    "fold": fold,
                    "subjects": subjects,
                    "num_clips": sum(clips_per_subject[s] for s in subjects),
                }
                for fold, subjects in enumerate(fold_subjects)
            ],
        },
    )


def run_cross_validation(config: ExperimentConfig, cv_root: Path, on_fold_done=None) -> dict:
    """Trains and tests every fold, then writes and returns the summary."""
    cv_root = Path(cv_root)
    cv_run = trainer.RunDir(cv_root)
    trainer.write_config(config, cv_run)
    records_path = trainer.resolve_records(config, cv_root / "data")
    index = trainer.index_for(config, records_path)
    fold_subjects = folds.subject_disjoint_folds(index.subject_ids, config.cv.num_folds)
    write_fold_assignment(cv_root, index, fold_subjects, config.cv.validation)
    for fold in range(config.cv.num_folds):
        fold_config = dataclasses.replace(config, cv=dataclasses.replace(config.cv, test_fold=fold))
        run = trainer.RunDir(fold_dir(cv_root, fold))
        trainer.write_config(fold_config, run)
        split = folds.split_for_fold(fold_subjects, fold, config.cv.validation)
        metrics = trainer.fit_run(fold_config, run, records_path, index, split, export=False)
        if on_fold_done:
            on_fold_done(fold, metrics)
    summary = summarize(cv_root)
    cv_report(cv_root, summary)
    return summary


def summarize(cv_root: Path) -> dict:
    """Per-fold and mean +- std (sample std, ddof=1) of every finished fold."""
    cv_root = Path(cv_root)
    fold_metrics = []
    for path in sorted(cv_root.glob("fold_*/metrics.json")):
        fold_metrics.append(json.loads(path.read_text()))
    if not fold_metrics:
        raise UserError(f"{cv_root} has no finished folds yet; run mater-tf cv first")
    label_names = fold_metrics[0]["label_names"]
    summary = {
        "experiment": fold_metrics[0]["experiment"],
        "corpus": fold_metrics[0]["corpus"],
        "synthetic": fold_metrics[0]["synthetic"],
        "label_names": label_names,
        "num_folds_finished": len(fold_metrics),
        "outputs": {},
    }
    for output in fold_metrics[0]["test"]:
        per_fold = [m["test"][output] for m in fold_metrics]
        pooled = np.sum([np.array(m["confusion_matrix"]) for m in per_fold], axis=0)
        labels = np.repeat(np.arange(len(label_names)), pooled.sum(axis=1))
        predictions = np.concatenate([np.repeat(np.arange(len(label_names)), row) for row in pooled])
        entry = {"pooled": classification_metrics(labels, predictions, label_names)}
        for key in ("accuracy", "unweighted_accuracy"):
            values = np.array([m[key] for m in per_fold])
            entry[key] = {
                "per_fold": [float(v) for v in values],
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            }
        summary["outputs"][output] = entry
    records.write_json(cv_root / SUMMARY_FILE, summary)
    return summary
