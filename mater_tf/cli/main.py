"""`mater-tf`: the root parser. Each subcommand module has `register` and `run`."""

from __future__ import annotations

import argparse
import logging
import sys

from mater_tf import __version__
from mater_tf.environment import configure_environment
from mater_tf.errors import UserError

SUBCOMMANDS = ("prepare", "train", "cv", "evaluate", "export", "predict", "report", "tune", "weights")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="mater-tf",
        description="MATER audio-visual emotion recognition: train, cross-validate, evaluate, export.",
    )
    parser.add_argument("--version", action="version", version=f"mater-tf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"mater_tf.cli.{name}").register(subparsers)
    return parser


def main(argv=None) -> int:
    """Runs the command line; returns the exit code (tests call this in-process)."""
    configure_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.handler(args)
    except UserError as error:
        print(f"mater-tf {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"mater-tf {args.command}: interrupted; run the same command again to resume "
            "from the last finished epoch",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
