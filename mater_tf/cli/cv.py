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
    lines = [f"{'output':<8}{'mean acc':>10}{'std':>8}{'mean UA':>10}{'std':>8}   per-fold accuracy"]
    for name, entry in summary["outputs"].items():
        accuracy, unweighted = entry["accuracy"], entry["unweighted_accuracy"]
        folds = " ".join(f"{v:.3f}" for v in accuracy["per_fold"])
        lines.append(
            f"{name.upper():<8}{accuracy['mean']:>10.3f}{accuracy['std']:>8.3f}"
            f"{unweighted['mean']:>10.3f}{unweighted['std']:>8.3f}   {folds}"
        )
    return "\n".join(lines)


def run(args) -> int:
    from mater_tf.training import cv

    config, cv_dir = common.resolve_run(args, "cv")
    if banner := common.synthetic_banner(config):
        print(banner)
    print(f"cross-validation directory: {cv_dir}")

    def report(fold, metrics):
        av = metrics["test"]["av"]["accuracy"]
        print(f"fold {fold + 1}/{config.cv.num_folds} done: AV accuracy {av:.3f}", flush=True)

    summary = cv.run_cross_validation(config, cv_dir, on_fold_done=report)
    print(format_summary(summary))
    print(f"summary: {cv_dir / cv.SUMMARY_FILE}")
    return 0
