"""`mater-tf evaluate --run DIR`: test metrics of a finished run (or every fold of a cv run)."""

from __future__ import annotations

from pathlib import Path

from mater_tf.cli import common
from mater_tf.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a finished run on its test subjects",
        description="Reads config.yaml and split.json from the run directory, never from flags.",
    )
    parser.add_argument("--run", dest="run_dir", type=Path, required=True, help="a run or cv directory")
    parser.set_defaults(handler=run)


def evaluate_run(run_dir: Path) -> dict:
    """Re-computes and rewrites metrics.json of one finished run."""
    import keras

    from mater_tf.config import read_run_config
    from mater_tf.data import records
    from mater_tf.training import evaluation, rundir, trainer
    from mater_tf.training.task import Task

    config = read_run_config(run_dir)
    run = rundir.RunDir(run_dir)
    split_info = rundir.read_split(run)
    if not run.model.is_file():
        raise UserError(f"{run_dir} has no model.keras: training has not finished; run mater-tf train again")
    _, index = rundir.trained_records(run, split_info)
    split = rundir.split_from_file(split_info)
    model = keras.models.load_model(str(run.model))
    prefix = trainer.data_prefix(index)
    metrics = evaluation.evaluate(model, Task(config, index), split, prefix)
    if run.metrics.is_file():
        import json

        previous = json.loads(run.metrics.read_text())
        metrics["training"] = previous.get("training", {})
    evaluation.write_test_figures(metrics, index.label_names, run.root, run.logs, prefix)
    records.write_json(run.metrics, metrics)
    return metrics


def run(args) -> int:
    from mater_tf.cli.cv import format_summary
    from mater_tf.training import cv

    run_dir = args.run_dir
    if run_dir.is_file():
        raise UserError(f"'{run_dir}' is a file; give the run's folder (made by mater-tf train or cv)")
    if not run_dir.is_dir():
        raise UserError(
            f"run directory '{run_dir}' does not exist; give a folder made by mater-tf train or cv"
        )
    if (run_dir / cv.FOLDS_FILE).is_file():
        for fold_path in sorted(run_dir.glob("fold_*")):
            if (fold_path / "model.keras").is_file():
                evaluate_run(fold_path)
        print(format_summary(cv.summarize(run_dir)))
        return 0
    metrics = evaluate_run(run_dir)
    print(common.format_test_results(metrics))
    return 0
