"""Subject-disjoint k-fold cross-validation (paper section 3.1), optionally with nested tuning.

    <cv dir>/config.yaml     resolved config (written first)
    <cv dir>/folds.json      subjects of every fold and their clip counts (written before training)
    <cv dir>/fold_XX/        one run directory per test fold (see rundir.py)
    <cv dir>/fold_XX/tune/   with cv.nested_tuning: that fold's own search (its training subjects only)
    <cv dir>/cv_metrics.json per-fold and mean +- std accuracy for AV, audio and face, each with its n

Finished folds are kept: running the same command again trains only the
folds that are missing or unfinished. A fold trained on its own (`mater-tf
train --set cv.test_fold=K`, e.g. on another machine) and copied in as
`fold_KK/` counts as finished when its config is the fold's.

A tuned number is honest only if the search that chose a fold's config never
saw that fold's test subjects. A config written by `mater-tf tune` records
the subjects its search trained and validated on (`tune.searched_subjects`);
cross-validating it is refused where a test fold overlaps them. With
`cv.nested_tuning: true` every outer fold k runs its own search on fold k's
training subjects only, then trains with the best trial and tests on fold k.
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
from mater_tf.reporting.cv_report import cv_report
from mater_tf.training import trainer
from mater_tf.training.experiment_data import fold_subjects, index_for, resolve_records
from mater_tf.training.metrics import classification_metrics
from mater_tf.training.rundir import RunDir, write_config

log = logging.getLogger(__name__)

FOLDS_FILE = "folds.json"
SUMMARY_FILE = "cv_metrics.json"


def fold_dir(cv_root: Path, fold: int) -> Path:
    return Path(cv_root) / f"fold_{fold:02d}"


def write_fold_assignment(
    cv_root: Path, config: ExperimentConfig, index: records.RecordIndex, subjects
) -> None:
    clips_per_subject = collections.Counter(index.subjects)
    records.write_json(
        Path(cv_root) / FOLDS_FILE,
        {
            "num_folds": len(subjects),
            "source": config.cv.folds_file or "consecutive sorted subject ids",
            "validation": (
                "the fold after the test fold (wrapping); never the test fold"
                if config.cv.validation
                else "none: every fold but the test fold trains (cv.validation=false)"
            ),
            "nested_tuning": config.cv.nested_tuning,
            "folds": [
                {"fold": fold, "subjects": members, "num_clips": sum(clips_per_subject[s] for s in members)}
                for fold, members in enumerate(subjects)
            ],
        },
    )


def check_not_tuned_on_test(config: ExperimentConfig, split: folds.FoldSplit) -> None:
    """Refuses to test a tuned config on subjects its search saw."""
    seen = set(config.tune.searched_subjects) & set(split.test)
    if seen:
        raise UserError(
            f"this config was chosen by a search that trained or validated on {', '.join(sorted(seen))}, "
            f"which test fold {split.test_fold} tests on, so its accuracy would be optimistic. Report a tuned "
            "number with nested selection: mater-tf cv --experiment <the untuned experiment> "
            "--set cv.nested_tuning=true (each fold searches on its own training subjects); or test only "
            "the fold the search held out (mater-tf train with that cv.test_fold)"
        )


def tuned_fold_config(config: ExperimentConfig, fold: int, fold_root: Path) -> ExperimentConfig:
    """Nested selection: the best config of a search over fold `fold`'s training subjects only."""
    from mater_tf.training import tuning

    search_config = dataclasses.replace(
        config,
        cv=dataclasses.replace(config.cv, test_fold=fold, nested_tuning=False),
    )
    tune_dir = fold_root / "tune"
    tune_dir.mkdir(parents=True, exist_ok=True)
    best = tuning.run_search(search_config, tune_dir)
    if best is None:
        raise UserError(
            "nested tuning runs on the chief only; start mater-tf cv without KERASTUNER_* variables"
        )
    return tuning.read_best_config(tune_dir)


def run_cross_validation(
    config: ExperimentConfig, cv_root: Path, on_fold_done=None, resume_root: Path | None = None
) -> dict:
    """Trains and tests every fold, then writes and returns the summary.

    `resume_root`: the cross-validation folder whose folds' state (finished, backup)
    each fold continues, when it is not `cv_root` (a multi-worker run's other
    workers write `cv_root` to a temporary folder; see `trainer.fit_run`).
    """
    cv_root = Path(cv_root)
    write_config(config, RunDir(cv_root))
    records_path = resolve_records(config, cv_root / "data")
    index = index_for(config, records_path)
    subjects = fold_subjects(config, index)
    splits = [folds.split_for_fold(subjects, fold, config.cv.validation) for fold in range(len(subjects))]
    for split in splits:  # before any training: a refusal costs nothing
        check_not_tuned_on_test(config, split)
    write_fold_assignment(cv_root, config, index, subjects)
    for fold, split in enumerate(splits):
        run = RunDir(fold_dir(cv_root, fold))
        fold_config = dataclasses.replace(config, cv=dataclasses.replace(config.cv, test_fold=fold))
        if config.cv.nested_tuning and not run.finished:
            fold_config = tuned_fold_config(config, fold, run.root)  # its cv: this test fold, not nested
            check_not_tuned_on_test(fold_config, split)
        if not run.finished or not config.cv.nested_tuning:
            # Also refuses a finished fold of another config, e.g. one trained elsewhere with
            # `mater-tf train --set cv.test_fold=K` and copied here (docs/scaling_out.md).
            write_config(fold_config, run)
        resume_from = RunDir(fold_dir(resume_root, fold)) if resume_root else None
        metrics = trainer.fit_run(
            fold_config, run, records_path, index, split, export=False, resume_from=resume_from
        )
        if on_fold_done:
            on_fold_done(fold, metrics)
    summary = summarize(cv_root)
    cv_report(cv_root, summary)
    return summary


def _fold_values(per_fold: list, key: str) -> dict:
    values = [m[key] for m in per_fold]
    scored = np.array([v for v in values if v is not None], dtype=float)
    return {
        "per_fold": values,
        "mean": float(scored.mean()) if len(scored) else None,
        # One scored fold has no spread: null, not 0.
        "std": float(scored.std(ddof=1)) if len(scored) > 1 else None,
        "folds_scored": int(len(scored)),
    }


def summarize(cv_root: Path) -> dict:
    """Per-fold and mean +- std (sample std, ddof=1) of every finished fold, with each fold's n.

    A fold where a modality is absent from every test clip, or from every
    training clip (its branch never learned), has no accuracy for that
    modality (null) and is left out of its mean; fewer than 2 scored folds
    have no std (null).
    """
    cv_root = Path(cv_root)
    fold_metrics = [json.loads(path.read_text()) for path in sorted(cv_root.glob("fold_*/metrics.json"))]
    if not fold_metrics:
        raise UserError(f"{cv_root} has no finished folds yet; run mater-tf cv first")
    label_names = fold_metrics[0]["label_names"]
    assignment = cv_root / FOLDS_FILE
    summary = {
        "experiment": fold_metrics[0]["experiment"],
        "corpus": fold_metrics[0]["corpus"],
        "synthetic": fold_metrics[0]["synthetic"],
        "label_names": label_names,
        "num_folds_finished": len(fold_metrics),
        "test_folds": [m["test_fold"] for m in fold_metrics],
        "nested_tuning": json.loads(assignment.read_text()).get("nested_tuning", False)
        if assignment.is_file()
        else False,
        "outputs": {},
    }
    for output in fold_metrics[0]["test"]:
        per_fold = [m["test"][output] for m in fold_metrics]
        pooled = np.sum([np.array(m["confusion_matrix"]) for m in per_fold], axis=0)
        labels = np.repeat(np.arange(len(label_names)), pooled.sum(axis=1))
        predictions = np.concatenate([np.repeat(np.arange(len(label_names)), row) for row in pooled])
        entry = {
            "pooled": classification_metrics(labels, predictions, label_names),
            "num_clips": {"per_fold": [m["num_clips"] for m in per_fold], "total": int(pooled.sum())},
            # Folds whose training split had no clip of this modality (its branch never learned).
            "folds_not_trained": sum(bool(m.get("not_trained")) for m in per_fold),
        }
        for key in ("accuracy", "unweighted_accuracy"):
            entry[key] = _fold_values(per_fold, key)
        summary["outputs"][output] = entry
    records.write_json(cv_root / SUMMARY_FILE, summary)
    return summary
