"""The run directory: where every file of a run lives, and the files written around training.

A run directory holds, in the order they are written:

    config.yaml            the resolved experiment config (written first)
    split.json             records location, label set, subjects of each split
    logs/                  TensorBoard: train/ and validation/ scalars, confusion matrices; test/ images
    backup/                the last finished epoch: weights + optimizer, callback counters,
                           random streams (deleted when training ends)
    history.csv            one row per epoch
    checkpoints/best.weights.h5   weights of the best validation epoch
    model.keras            the model with the chosen weights
    metrics.json           test (and validation) metrics: AV, audio, face, each with its n
    timing.json            wall-clock time of each training session
    confusion_*.png        test confusion matrices
    export/                SavedModel for serving (+ mater_tf.json)

    .lock                  held by the process training the run (`run_lock`)

A finished run (metrics.json present) is not trained again.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import json
import logging
import os
from pathlib import Path

from mater_tf.config import ExperimentConfig
from mater_tf.data import folds, records
from mater_tf.errors import UserError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_lock(root: str | Path, activity: str = "training"):
    """Holds `root/.lock` (an exclusive flock) while the block runs.

    Two processes training the same run folder would corrupt each other's
    checkpoints; the second is refused with one line naming the first's pid.
    The OS drops the lock when its process dies, so a killed run never
    leaves a stale lock.

    Raises:
        UserError: when another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, as before
        yield
        return
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    handle = open(root / LOCK_FILE, "a+")  # noqa: SIM115 - held for the block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UserError(
                f"{root}: another mater-tf process (pid {holder}) is {activity} this run; wait for it to "
                "finish or stop it, or pass --run NEW_NAME for a separate run"
            ) from None
        except OSError as error:  # a file system without flock
            logging.getLogger(__name__).warning("%s: cannot lock (%s); not guarded", root, error.strerror)
        else:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


@dataclasses.dataclass(frozen=True)
class RunDir:
    """The files of a run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def backup(self) -> Path:
        return self.root / "backup"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def best_weights(self) -> Path:
        return self.root / "checkpoints" / "best.weights.h5"

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def timing(self) -> Path:
        return self.root / "timing.json"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def finished(self) -> bool:
        return self.metrics.is_file()


def write_config(config: ExperimentConfig, run: RunDir) -> None:
    """Writes config.yaml first; refuses a run directory made by another config."""
    if run.config.is_file():
        existing = run.config.read_text(encoding="utf-8")
        if existing != config.to_yaml():
            raise UserError(
                f"{run.root} already holds a run of a different config; pass --run NEW_NAME "
                "or delete that folder"
            )
        return
    records.write_atomically(run.config, lambda tmp: Path(tmp).write_text(config.to_yaml(), encoding="utf-8"))


def write_split(run: RunDir, records_path: Path, index: records.RecordIndex, split: folds.FoldSplit) -> None:
    """split.json: the records (resolved path) and the subjects of every split."""
    payload = {"records": str(Path(records_path).resolve()), **index.metadata(), **split.to_dict()}
    records.write_json(run.split, payload)


def read_split(run: RunDir) -> dict:
    if not run.split.is_file():
        raise UserError(f"{run.root} has no split.json: training never started there")
    return json.loads(run.split.read_text())


def split_from_file(info: dict) -> folds.FoldSplit:
    """The FoldSplit recorded in a split.json."""
    return folds.FoldSplit(
        **{key: tuple(info[key]) if isinstance(info[key], list) else info[key] for key in FOLD_SPLIT_KEYS}
    )


FOLD_SPLIT_KEYS = ("test_fold", "validation_fold", "train", "validation", "test")


def history_rows(run: RunDir) -> list[dict]:
    if not run.history.is_file():
        return []
    with run.history.open() as handle:
        return list(csv.DictReader(handle))


def trim_history(run: RunDir, epochs_done: int) -> None:
    """Drops history rows of epochs at or after `epochs_done` (they will run again).

    The history row of an epoch is written before that epoch's backup, so a
    kill between the two leaves one row too many; this removes it.
    """
    if not run.history.is_file():
        return
    with run.history.open() as handle:
        rows = list(csv.reader(handle))
    kept = rows[:1] + [row for row in rows[1:] if row and int(row[0]) < epochs_done]
    if len(kept) != len(rows):

        def write(tmp):
            with open(tmp, "w", newline="") as handle:
                csv.writer(handle).writerows(kept)

        records.write_atomically(run.history, write)


def best_validation_loss(run: RunDir) -> float | None:
    """The best val_loss of the epochs in history.csv (None without validation)."""
    # Keras' CSVLogger writes val_ columns as "NA" when there is no validation split.
    losses = [
        float(row["val_loss"]) for row in history_rows(run) if row.get("val_loss") not in (None, "", "NA")
    ]
    return min(losses) if losses else None


def find_records(run: RunDir, split_info: dict) -> Path:
    """The records a run trained on: where split.json says, or the run's own data/ folder
    (synthetic records travel with a moved run folder).

    Raises:
        UserError: when they are in neither place.
    """
    recorded = Path(split_info["records"])
    if glob.glob(str(recorded)):  # a folder or a glob of shards
        return recorded
    for candidate in (run.root / "data", run.root.parent / "data"):
        if (candidate / records.MANIFEST_FILE).is_file():
            return candidate
    raise UserError(
        f"{run.root}: the records it trained on are not at {recorded} any more; move them back there "
        "(split.json names them) to evaluate or export this run"
    )


def trained_records(run: RunDir, split_info: dict) -> tuple[Path, records.RecordIndex]:
    """The records a run trained on (`find_records`) and their index, checked against what split.json
    says they were when it trained.

    Raises:
        UserError: they are gone, or they were prepared again since (another windowing, embedder or
            label set): the model would read windows it never learned, or crash.
    """
    path = find_records(run, split_info)
    index = records.index_records(path)
    for key, now in index.metadata().items():
        then = split_info.get(key)
        if then is not None and now != then:
            raise UserError(
                f"{run.root}: its records at {path} were prepared again since it trained ({key}: {then} "
                f"then, {now} now); prepare them again as they were (mater-tf prepare --windows "
                f"{split_info.get('num_windows')} --window-seconds {split_info.get('window_seconds')}, the "
                "same embedders), or train again on the new ones"
            )
    return path, index
