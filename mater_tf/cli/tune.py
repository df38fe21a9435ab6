"""`mater-tf tune`: Keras Tuner search (heads, learning rate, ...) on held-out training subjects."""

from __future__ import annotations

from mater_tf.cli import common


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="Keras Tuner search; writes the best trial as an experiment YAML",
        description=(
            "Searches the tune.* space (random, hyperband or bayesian) with the AV accuracy on validation "
            "subjects as the objective; the test fold is never used. Re-running continues an interrupted "
            "search. Distributed: set KERASTUNER_TUNER_ID (chief, tuner0, ...), KERASTUNER_ORACLE_IP and "
            "KERASTUNER_ORACLE_PORT and run the same command in every process."
        ),
    )
    common.add_experiment_arguments(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    common.require_tuner("mater-tf tune")
    from mater_tf.training import tuning

    with common.locked_run(args, "tune", lock=False) as (config, tune_dir):
        if banner := common.synthetic_banner(config):
            print(banner)
        print(f"tuning directory: {tune_dir}")
        summary = tuning.run_search(config, tune_dir)
        if summary is None:
            print("worker done: the chief writes the results")
            return 0
        best = summary["best"]
        print(
            f"{len(summary['trials'])} trials; best {tuning.OBJECTIVE} {best[tuning.OBJECTIVE]:.4f} "
            f"(lowest wins; at {summary['epoch_scored']}) with {best['values']}"
        )
        print(f"best experiment: {tune_dir / 'best_experiment.yaml'}")
        return 0
