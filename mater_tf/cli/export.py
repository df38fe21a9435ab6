"""`mater-tf export --run DIR --out BASE [--version N]`: a version of a TF Serving model base."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mater_tf.errors import UserError

SERVE_COMMAND = "docker run -p 8500:8500 -p 8501:8501 -v {base}:/models/mater -e MODEL_NAME=mater tensorflow/serving:2.17.1"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a finished run for TF Serving: BASE/<version>/ (serving_default + serve_examples)",
    )
    parser.add_argument("--run", dest="run_dir", type=Path, required=True, help="a finished run directory")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the TF Serving model base folder: a new folder, or one of numbered versions",
    )
    parser.add_argument(
        "--version", type=int, default=None, help="version number (default: one above the highest in --out)"
    )
    parser.set_defaults(handler=run)


def existing_versions(base: Path) -> list[int]:
    """The version numbers already in a model base; refuses a folder that is not one."""
    if base.is_file():
        raise UserError(f"--out {base} is a file; give a folder to create (the TF Serving model base)")
    if not base.exists():
        return []
    if (base / "saved_model.pb").is_file():
        raise UserError(
            f"--out {base} is itself a SavedModel (the older flat export); TF Serving reads "
            "BASE/<version>/: give a new folder"
        )
    versions = []
    for child in base.iterdir():
        if child.name.startswith("."):  # an interrupted export's partial folder; TF Serving skips it too
            continue
        if not (child.is_dir() and child.name.isdigit()):
            raise UserError(
                f"--out {base} is not empty and not a TF Serving model base (it holds '{child.name}', "
                "a base holds only numbered version folders); choose a new folder"
            )
        versions.append(int(child.name))
    return sorted(versions)


def run(args) -> int:
    import keras
    import tensorflow as tf

    from mater_tf.config import read_run_config
    from mater_tf.data import records
    from mater_tf.serving.export import WARMUP_CLIPS, export_serving_version
    from mater_tf.training import rundir, trainer

    if args.version is not None and args.version < 1:
        raise UserError(
            f"--version {args.version}: give a positive number (TF Serving's versions are 1, 2, ...)"
        )
    config = read_run_config(args.run_dir)
    run = rundir.RunDir(args.run_dir)
    split_info = rundir.read_split(run)
    if not run.model.is_file():
        raise UserError(
            f"{args.run_dir} has no model.keras: training has not finished; run mater-tf train again"
        )
    base = args.out
    versions = existing_versions(base)
    # Before any work: a folder that cannot be written is said now, not after loading the model.
    created_base = not base.exists()
    try:
        records.make_out_dir(base)
    finally:
        if created_base and base.is_dir():
            base.rmdir()  # made again when the version is written whole
    version = args.version or (versions[-1] + 1 if versions else 1)
    if version in versions:
        raise UserError(
            f"--out {base} already holds version {version}; leave out --version to write version "
            f"{versions[-1] + 1}, or choose another number"
        )
    records_path, _ = rundir.trained_records(run, split_info)
    model = keras.models.load_model(str(run.model))
    metadata = {key: split_info[key] for key in records.METADATA_KEYS}
    # The warmup requests TF Serving replays on load: real clips of the run's records.
    examples = list(
        tf.data.TFRecordDataset(records.list_shards(records_path)).take(WARMUP_CLIPS).as_numpy_iterator()
    )
    # Written beside the version under a name TF Serving skips (not a number), renamed when whole: a
    # server polling the base never loads a half-written version, and a killed export leaves nothing at
    # BASE/<version> (only this partial folder, which the next export replaces).
    created_base = not base.exists()
    version_dir = base / str(version)
    partial = base / f".{version}.partial-export"
    if partial.exists():
        shutil.rmtree(partial)
    try:
        base.mkdir(parents=True, exist_ok=True)
        export_serving_version(
            model,
            partial,
            metadata["label_names"],
            trainer.export_metadata(config, metadata, records_path),
            examples,
        )
        os.replace(partial, version_dir)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
        if created_base and base.is_dir() and not any(base.iterdir()):
            base.rmdir()
    print(
        f"SavedModel written to {version_dir} (version {version} of the TF Serving model base {base}; "
        "signatures: serving_default, serve_examples, and serve_attention when the model attends)"
    )
    print(f"serve it: {SERVE_COMMAND.format(base=base.resolve())}")
    return 0
