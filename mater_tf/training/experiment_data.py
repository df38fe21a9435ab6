"""The records and subjects of an experiment: where its records are, their index checked against
the config's windowing, the folds and the train / validation / test subjects of one fold.

`mater-tf train`, `cv` and `tune` resolve their data through these before a
`task.Task` is built on the index.
"""

from __future__ import annotations

from pathlib import Path

from mater_tf.config import ExperimentConfig
from mater_tf.data import folds, records, synthetic
from mater_tf.errors import UserError


def resolve_records(config: ExperimentConfig, data_dir: Path) -> Path:
    """The records to train on (resolved); the synthetic corpus is written to `data_dir` once."""
    if config.data.source == "synthetic":
        return synthetic.write_corpus(config.data.synthetic, data_dir).resolve()
    source = Path(config.data.source).expanduser()
    return source.resolve() if source.exists() else source


def index_for(config: ExperimentConfig, records_path) -> records.RecordIndex:
    """Indexes finished records and checks them against the config's expected windowing."""
    records.check_complete(records_path)
    index = records.index_records(records_path)
    windows, seconds = config.data.num_windows, config.data.window_seconds  # 0 = any
    wrong_windows = bool(windows) and index.num_windows != windows
    wrong_seconds = bool(seconds) and abs(index.window_seconds - seconds) > 1e-6
    if wrong_windows or wrong_seconds:
        # Name only what the experiment sets: a setting left at 0 (any) is not a windowing to prepare.
        expected = " x ".join(part for part in (windows and f"{windows}", seconds and f"{seconds} s") if part)
        prepare_flags = (
            f"--windows {windows or index.num_windows} --window-seconds {seconds or index.window_seconds}"
        )
        records_settings = " ".join(
            setting
            for setting, wrong in (
                (f"--set data.num_windows={index.num_windows}", wrong_windows),
                (f"--set data.window_seconds={index.window_seconds}", wrong_seconds),
            )
            if wrong
        )
        raise UserError(
            f"the records at {records_path} have {index.num_windows} x {index.window_seconds} s windows but the "
            f"experiment expects {expected} windows; prepare them with {prepare_flags}, point data.source at "
            f"the right folder, or run the experiment at the records' windowing: {records_settings}"
        )
    return index


def fold_subjects(config: ExperimentConfig, index: records.RecordIndex) -> list[list[str]]:
    """The folds of the experiment: the user's fold file (cv.folds_file) or consecutive sorted subjects."""
    if config.cv.folds_file:
        subjects = folds.load_folds_file(config.cv.folds_file, index.subject_ids)
        if len(subjects) != config.cv.num_folds:
            raise UserError(
                f"cv.folds_file {config.cv.folds_file} has {len(subjects)} folds but cv.num_folds="
                f"{config.cv.num_folds}: --set cv.num_folds={len(subjects)}"
            )
        return subjects
    return folds.subject_disjoint_folds(index.subject_ids, config.cv.num_folds, config.cv.validation)


def make_split(config: ExperimentConfig, index: records.RecordIndex, test_fold: int | None = None):
    """The train / validation / test subjects of one fold of the experiment."""
    fold = config.cv.test_fold if test_fold is None else test_fold
    return folds.split_for_fold(fold_subjects(config, index), fold, config.cv.validation)
