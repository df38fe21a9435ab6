"""`mater-tf cv`: subject-disjoint k-fold cross-validation."""

from __future__ import annotations

from mater_tf.cli import common


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "cv",
        help="subject-disjoint k-fold cross-validation (cv.num_folds folds)",
        description="Train and test every fold; report per-fold and mean +- std accuracy (AV, audio, face).",
    )
    common.add_experiment_arguments(parser)
    parser.set_defaults(handler=run)


def format_summary(summary: dict) -> str:
    """Mean +- std per output with its n (test clips scored over all folds), and every fold's accuracy."""
    lines = [f"{'output':<8}{'mean acc':>10}{'std':>8}{'mean UA':>10}{'std':>8}{'n':>7}   per-fold accuracy"]
    for name, entry in summary["outputs"].items():
        accuracy, unweighted = entry["accuracy"], entry["unweighted_accuracy"]
        folds = " ".join(common.format_accuracy(v) for v in accuracy["per_fold"])
        if entry.get("folds_not_trained"):
            folds += f"   ({entry['folds_not_trained']} folds: no training clip had a {name}, not scored)"
        lines.append(
            f"{name.upper():<8}{common.format_accuracy(accuracy['mean']):>10}"
            f"{common.format_accuracy(accuracy['std']):>8}"
            f"{common.format_accuracy(unweighted['mean']):>10}{common.format_accuracy(unweighted['std']):>8}"
            f"{entry.get('num_clips', {}).get('total', ''):>7}   {folds}"
        )
    return "\n".join(lines)


def run(args) -> int:
    from mater_tf.training import cv, distribution

    with common.locked_run(args, "cv") as (config, cv_dir):
        if config.cv.nested_tuning:
            common.require_tuner("mater-tf cv with cv.nested_tuning=true")
        role = distribution.start(config)  # joins a multi-worker cluster before any TensorFlow op
        with distribution.writable_root(config, cv_dir) as out_dir:
            if banner := common.synthetic_banner(config):
                print(banner)
            print(f"cross-validation directory: {cv_dir}")
            if not role.is_chief:
                print(f"{common.worker_line(role)}: the chief writes {cv_dir}; this worker writes {out_dir}")

            def report(fold, metrics):
                av = metrics["test"]["av"]["accuracy"]
                print(
                    f"fold {fold + 1}/{config.cv.num_folds} done: AV accuracy {common.format_accuracy(av)}",
                    flush=True,
                )

            summary = cv.run_cross_validation(
                config,
                out_dir,
                on_fold_done=report,
                resume_root=None if role.is_chief or args.restart else cv_dir,
            )
            print(format_summary(summary))
            if role.is_chief:
                print(f"summary: {cv_dir / cv.SUMMARY_FILE}")
            return 0
