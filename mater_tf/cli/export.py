"""`mater-tf export --run DIR --out DIR`: SavedModel for serving."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mater_tf.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a finished run as a SavedModel (serving_default + serve_examples)",
    )
    parser.add_argument("--run", dest="run_dir", type=Path, required=True, help="a finished run directory")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the SavedModel to")
    parser.set_defaults(handler=run)


def run(args) -> int:
    import keras

    from mater_tf.config import read_run_config
    from mater_tf.data import records
    from mater_tf.serving.export import export_saved_model
    from mater_tf.training import rundir, trainer

    config = read_run_config(args.run_dir)
    run = rundir.RunDir(args.run_dir)
    split_info = rundir.read_split(run)
    if not run.model.is_file():
        raise UserError(
            f"{args.run_dir} has no model.keras: training has not finished; run mater-tf train again"
        )
    if args.out.is_file():
        raise UserError(f"--out {args.out} is a file; give a folder to create")
    if args.out.exists() and any(args.out.iterdir()):
        raise UserError(f"--out {args.out} exists and is not empty; choose a new folder")
    model = keras.models.load_model(str(run.model))
    metadata = {key: split_info[key] for key in records.METADATA_KEYS}
    # Written beside --out and renamed when whole: a killed export leaves no half folder at --out
    # (only this temporary one, which the next export replaces).
    partial = args.out.with_name(f".{args.out.name}.partial-export")
    if partial.exists():
        shutil.rmtree(partial)
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        export_saved_model(
            model,
            partial,
            metadata["label_names"],
            trainer.export_metadata(config, metadata, rundir.find_records(run, split_info)),
        )
        if args.out.exists():
            args.out.rmdir()  # empty, checked above
        os.replace(partial, args.out)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    print(
        f"SavedModel written to {args.out} (signatures: serving_default, serve_examples, and serve_attention when the model attends)"
    )
    return 0
