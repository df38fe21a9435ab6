"""Subject-disjoint folds: a pure function of the sorted subject ids."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from mater_tf.errors import UserError


def subject_disjoint_folds(subject_ids: Sequence[str], num_folds: int) -> list[list[str]]:
    """Splits subjects into `num_folds` folds of consecutive sorted ids.

    Sizes differ by at most one (RAVDESS: 24 actors -> 12 folds of 2, one odd
    and one even actor, so one man and one woman; CREMA-D: 91 -> 10 folds of
    9 or 10). Every subject is in exactly one fold.

    Raises:
        UserError: when there are fewer subjects than folds.
    """
    subjects = sorted(set(subject_ids))
    if num_folds < 1:
        raise UserError(f"cv.num_folds={num_folds} must be >= 1")
    if len(subjects) < num_folds:
        raise UserError(
            f"the data has {len(subjects)} subjects but cv.num_folds={num_folds}: "
            f"set --set cv.num_folds={len(subjects)} or fewer"
        )
    base, extra = divmod(len(subjects), num_folds)
    folds, start = [], 0
    for fold in range(num_folds):
        size = base + (1 if fold < extra else 0)
        folds.append(subjects[start : start + size])
        start += size
    return folds


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
    split has no validation subjects (`validation_fold` is -1).
    """
    num_folds = len(folds)
    needed = 3 if validation else 2
    if num_folds < needed:
        parts = "test, validation, train" if validation else "test, train"
        raise UserError(f"cross-validation needs at least {needed} folds ({parts}), got {num_folds}")
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
