"""`mater-tf train`: one run (the config's test fold held out), then export."""

from __future__ import annotations

from mater_tf.cli import common


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train MATER on one fold (no arguments: the synthetic quickstart)",
        description=(
            "Train on the training folds, select on held-out validation subjects (none with "
            "cv.validation=false: the last weights are kept), test on cv.test_fold (-1: none, every "
            "subject trains), and export a SavedModel. Re-running resumes an interrupted run."
        ),
    )
    common.add_experiment_arguments(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from mater_tf.training import cv, distribution, experiment_data, rundir, trainer

    with common.locked_run(args, "run") as (config, run_dir):
        role = distribution.start(config)  # joins a multi-worker cluster before any TensorFlow op
        with distribution.writable_root(config, run_dir) as out_dir:
            run = rundir.RunDir(out_dir)
            rundir.write_config(config, run)
            if banner := common.synthetic_banner(config):
                print(banner)
            print(f"run directory: {run_dir}")
            if not role.is_chief:
                print(f"{common.worker_line(role)}: the chief writes {run_dir}; this worker writes {out_dir}")
            records_path = experiment_data.resolve_records(config, out_dir / "data")
            index = experiment_data.index_for(config, records_path)
            split = experiment_data.make_split(config, index)
            cv.check_not_tuned_on_test(config, split)
            print(
                f"{len(index.clip_ids)} clips, {len(index.subject_ids)} subjects, {index.num_classes} classes; "
                f"train {len(split.train)} / validation {len(split.validation)} / test {len(split.test)} subjects"
            )
            resume_from = None if role.is_chief or args.restart else rundir.RunDir(run_dir)
            metrics = trainer.fit_run(config, run, records_path, index, split, resume_from=resume_from)
            print(common.format_test_results(metrics))
            if role.is_chief:
                print(
                    f"metrics: {run.metrics}\nSavedModel: {run.export}\n"
                    f"TensorBoard: tensorboard --logdir {args.workdir}"
                )
            return 0
