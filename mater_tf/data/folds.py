"""Subject-disjoint folds: a pure function of the sorted subject ids, or a published split read from a file."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mater_tf.config.train import NO_TEST_FOLD
from mater_tf.errors import UserError


def subject_disjoint_folds(
    subject_ids: Sequence[str], num_folds: int, validation: bool = True
) -> list[list[str]]:
    """Splits subjects into `num_folds` folds of consecutive sorted ids (`subject_order`:
    numbers as numbers, so "2" comes before "10").

    Sizes differ by at most one (RAVDESS: 24 actors -> 12 folds of 2, one odd
    and one even actor, so one man and one woman; CREMA-D: 91 -> 10 folds of
    9 or 10). Every subject is in exactly one fold.

    Raises:
        UserError: when there are fewer subjects than folds, with a fold count
            that works (`validation`: whether a validation fold is needed too).
    """
    subjects = sorted(set(subject_ids), key=subject_order)
    if num_folds < 1:
        raise UserError(f"cv.num_folds={num_folds} must be >= 1")
    if len(subjects) < num_folds:
        raise UserError(
            f"the data has {len(subjects)} subjects but cv.num_folds={num_folds}: {_fold_fix(len(subjects), validation)}"
        )
    base, extra = divmod(len(subjects), num_folds)
    folds, start = [], 0
    for fold in range(num_folds):
        size = base + (1 if fold < extra else 0)
        folds.append(subjects[start : start + size])
        start += size
    return folds


def subject_order(subject: str) -> tuple:
    """Sort key of subject ids: digit runs compare as numbers ("2" < "10", as a CSV corpus's
    unpadded speaker numbers must), then the text itself breaks ties ("01" against "1")."""
    return (_natural_order(str(subject)), str(subject))


def _fold_fix(num_subjects: int, validation: bool) -> str:
    """A setting that works for `num_subjects` (each fold needs a subject; test, validation, train)."""
    if num_subjects >= 3:
        return f"set --set cv.num_folds={num_subjects} or fewer (at least {3 if validation else 2})"
    if num_subjects == 2:
        return (
            "set --set cv.num_folds=2 --set cv.validation=false --set train.early_stopping_patience=0 "
            "(two subjects leave none for validation: one trains, one tests)"
        )
    return "subject-disjoint folds need recordings of at least 2 subjects; add another speaker's clips"


@dataclasses.dataclass(frozen=True)
class FoldSplit:
    """The subjects of one fold's train, validation and test splits."""

    test_fold: int
    validation_fold: int
    train: tuple
    validation: tuple
    test: tuple

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def split_for_fold(folds: list[list[str]], test_fold: int, validation: bool = True) -> FoldSplit:
    """Test = fold `test_fold`; validation = the next fold; train = the rest.

    Validation subjects come from the training folds, so early stopping, the
    LR schedule and checkpoint choice never see a test subject. With
    `validation=False` (the paper's protocol) every other fold trains and the
    split has no validation subjects (`validation_fold` is -1). `test_fold`
    -1 (`NO_TEST_FOLD`, with `validation=False` only) tests on nobody: every
    subject trains, as for a model to ship, whose held-out estimate comes from
    cross-validation.
    """
    if test_fold == NO_TEST_FOLD:
        if validation:
            raise UserError(
                "cv.test_fold=-1 (no test fold: every subject trains) leaves no fold to validate on: "
                "add --set cv.validation=false"
            )
        train = tuple(subject for subjects in folds for subject in subjects)
        return FoldSplit(test_fold=NO_TEST_FOLD, validation_fold=-1, train=train, validation=(), test=())
    num_folds = len(folds)
    needed = 3 if validation else 2
    if num_folds < needed:
        parts = "test, validation, train" if validation else "test, train"
        fix = (
            "--set cv.validation=false --set train.early_stopping_patience=0 (no validation fold), "
            "or data from more subjects"
            if validation and num_folds == 2
            else "data from more subjects"
        )
        raise UserError(
            f"cross-validation needs at least {needed} folds ({parts}), got {num_folds}: use {fix}"
        )
    if not 0 <= test_fold < num_folds:
        raise UserError(f"test fold {test_fold} is out of range: the data has {num_folds} folds")
    validation_fold = (test_fold + 1) % num_folds if validation else -1
    train = [s for f, subjects in enumerate(folds) if f not in (test_fold, validation_fold) for s in subjects]
    return FoldSplit(
        test_fold=test_fold,
        validation_fold=validation_fold,
        train=tuple(train),
        validation=tuple(folds[validation_fold]) if validation else (),
        test=tuple(folds[test_fold]),
    )


FOLDS_FILE_FORMATS = (
    'JSON {"subject": fold, ...}, {"folds": [[subject, ...], ...]} or [[subject, ...], ...], '
    "or a CSV with a header row subject,fold"
)


def load_folds_file(path: str | Path, subject_ids: Sequence[str]) -> list[list[str]]:
    """Reads a published split (a peer's subject -> fold assignment) for the subjects of the records.

    Formats (by suffix):
      * `.json`: `{"subject": fold, ...}`; `{"folds": [[subject, ...], ...]}`
        (also the `folds.json` that `mater-tf cv` writes, whose folds are
        `{"fold": k, "subjects": [...]}`); or `[[subject, ...], ...]`.
      * `.csv`: a header row with columns `subject` and `fold` (any order,
        other columns ignored; a UTF-8 BOM is fine), one subject per row.

    Fold numbering: a list of folds keeps the file's order. Where each subject
    names its fold, the distinct fold labels, in natural order (1, 2, ..., 10;
    fold_a < fold_b), become folds 0..k-1, so labels may start at 0 or 1 or be
    names. Subject ids are compared as text.

    Args:
        path: the JSON or CSV file.
        subject_ids: the subjects of the records; every one must be in the file.

    Returns:
        The subjects of fold k at index k, each fold sorted.

    Raises:
        UserError: one line naming the file and the fix, when the file cannot be
            read, a subject is in two folds, a subject of the records is missing
            from the file, the file names subjects the records do not have, a
            fold is empty, or there are fewer than 2 folds.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"cv.folds_file '{path}' not found: give the path of a {FOLDS_FILE_FORMATS}, "
            "or --set cv.folds_file= for folds of consecutive sorted subjects"
        )
    suffix = path.suffix.lower()
    if suffix == ".json":
        folds = _read_json_folds(path)
    elif suffix == ".csv":
        folds = _read_csv_folds(path)
    else:
        raise UserError(f"cv.folds_file '{path}' must end in .json or .csv ({FOLDS_FILE_FORMATS})")
    return _check_folds(path, folds, subject_ids)


def _names(subjects) -> str:
    subjects = sorted(subjects)
    shown = ", ".join(subjects[:10])
    return shown + (f" and {len(subjects) - 10} more" if len(subjects) > 10 else "")


def _natural_order(label: str) -> list:
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", label) if part
    ]


def _folds_from_labels(path: Path, assignments: list[tuple[str, Any]]) -> list[list[str]]:
    """[(subject, fold label), ...] -> folds, the labels in natural order."""
    labels: dict[str, str] = {}
    for subject, label in assignments:
        if isinstance(label, bool) or not isinstance(label, (int, str)) or not str(label).strip():
            raise UserError(
                f"{path}: the fold of subject '{subject}' is {label!r}; give an integer or a name for each fold"
            )
        label = str(label).strip()
        if re.fullmatch(r"-\s*\d+", label):
            raise UserError(
                f"{path}: the fold of subject '{subject}' is {label}; fold numbers are 0 or more "
                "(or names): renumber the folds"
            )
        if labels.setdefault(subject, label) != label:
            raise UserError(
                f"{path}: subject '{subject}' is in fold {labels[subject]} and in fold {label}; "
                "keep one row per subject"
            )
    order = sorted(set(labels.values()), key=_natural_order)
    return [[s for s, label in labels.items() if label == fold] for fold in order]


def _read_json_folds(path: Path) -> list[list[str]]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid JSON ({error}); fix the file ({FOLDS_FILE_FORMATS})") from None
    if isinstance(loaded, dict) and "folds" in loaded:
        loaded = loaded["folds"]
    if isinstance(loaded, dict):
        return _folds_from_labels(path, [(str(subject).strip(), fold) for subject, fold in loaded.items()])
    if isinstance(loaded, list):
        folds = []
        for fold in loaded:
            if isinstance(fold, dict) and isinstance(fold.get("subjects"), list):
                fold = fold["subjects"]  # the folds.json of mater-tf cv
            if not isinstance(fold, list) or not all(isinstance(s, (str, int)) for s in fold):
                break
            folds.append([str(subject).strip() for subject in fold])
        else:
            return folds
    raise UserError(f"{path}: not a split; write {FOLDS_FILE_FORMATS}")


def _read_csv_folds(path: Path) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            rows = list(csv.reader(stream))
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path}: not a readable CSV ({error}); save it as UTF-8 text") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if "subject" not in header or "fold" not in header:
        raise UserError(
            f"{path}: the first row must be a header naming the columns subject and fold "
            f"(found {','.join(header) or 'an empty file'}); add the line subject,fold at the top"
        )
    subject_column, fold_column = header.index("subject"), header.index("fold")
    assignments = []
    for line, row in enumerate(rows[1:], start=2):
        cells = [cell.strip() for cell in row] + [""] * len(header)
        if not cells[subject_column] or not cells[fold_column]:
            raise UserError(
                f"{path}: row {line} has no subject or no fold; give both (subject,fold) or delete it"
            )
        assignments.append((cells[subject_column], cells[fold_column]))
    return _folds_from_labels(path, assignments)


def _check_folds(path: Path, folds: list[list[str]], subject_ids: Sequence[str]) -> list[list[str]]:
    """Each subject of the records in exactly one fold, no stranger, no empty fold, at least 2 folds."""
    seen: dict[str, int] = {}
    for fold, subjects in enumerate(folds):
        for subject in subjects:
            if seen.setdefault(subject, fold) != fold:
                raise UserError(
                    f"{path}: subject '{subject}' is in fold {seen[subject]} and in fold {fold}; "
                    "keep it in one fold"
                )
    records = {str(s) for s in subject_ids}
    missing = records - seen.keys()
    if missing:
        raise UserError(
            f"{path}: the records' subjects {_names(missing)} are in no fold; add them to the file "
            "(every subject must be in one fold)"
        )
    strangers = seen.keys() - records
    if strangers:
        raise UserError(
            f"{path}: subjects {_names(strangers)} are not in the records; remove them from the file, or "
            "point data.source at the records of that split"
        )
    empty = [fold for fold, subjects in enumerate(folds) if not subjects]
    if empty:
        raise UserError(f"{path}: fold {empty[0]} has no subjects; remove it or move subjects into it")
    if len(folds) < 2:
        raise UserError(
            f"{path}: the split has {len(folds)} fold; cross-validation needs at least 2: "
            "assign the subjects to 2 or more folds"
        )
    return [sorted(set(subjects), key=subject_order) for subjects in folds]
