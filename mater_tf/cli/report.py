"""`mater-tf report RUN_DIR...`: the paper's Tables 1 and 3 with our numbers beside them."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="collect finished runs into the paper's Tables 1 and 3 (ours beside the paper's numbers)",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="cv (or train) run directories")
    parser.add_argument("--out", type=Path, help="also write the Markdown to this file")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from mater_tf.reporting.cv_report import cv_report
    from mater_tf.reporting.paper_tables import paper_tables
    from mater_tf.training.cv import summarize

    for path in args.runs:  # (re)write each cv folder's own report too
        if (path / "cv_metrics.json").is_file():
            cv_report(path, summarize(path))
    markdown = paper_tables(args.runs)
    print(markdown)
    if args.out:
        args.out.write_text(markdown + "\n")
    return 0
