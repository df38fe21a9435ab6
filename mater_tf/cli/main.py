"""`mater-tf`: the root parser. Each subcommand module has `register` and `run`.

What reaches the terminal is what mater-tf has to say: progress, results, and
one line per user mistake (a `UserError`, a missing optional package, a path
that cannot be written, a full disk), never a traceback for those.
TensorFlow's import banner and its Python warnings are hidden unless `-v`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import re
import signal
import sys
import threading
import warnings

from mater_tf import __version__
from mater_tf.environment import configure_environment, private_temporary_folder
from mater_tf.errors import UserError

SUBCOMMANDS = (
    "prepare",
    "train",
    "cv",
    "evaluate",
    "export",
    "predict",
    "models",
    "report",
    "tune",
    "weights",
)

# What an interrupted command leaves, and how to go on.
INTERRUPTED = {
    "prepare": "the shards already written are kept; run the same command again to finish the rest",
    "train": "run the same command again to resume from the last finished epoch",
    "cv": "finished folds are kept; run the same command again to resume",
    "tune": "finished trials are kept; run the same command again to continue the search",
    "evaluate": "metrics.json is unchanged; run the same command again",
    "export": "nothing was exported; run the same command again",
    "predict": "the predictions printed above are written; run it again for the rest",
    "models": "nothing written; run the same command again",
    "report": "no report written; run the same command again",
    "weights": "nothing written; run the same command again",
}

# Modules of the optional extras, and the install that brings them.
EXTRAS = {
    "av": "media",
    "mtcnn": "media",
    "tensorflow_io": "media",
    "tensorflow_hub": "media",
    "tf_keras": "media",
    "scipy": "media",
    "keras_tuner": "tune",
    "sklearn": "tune",
}

# TensorFlow appends its graph context to op errors: `{{function_node __inference_...}}`,
# `[[{{node ...}}]]`, `[Op:...]`. None of it helps a user.
_TF_INTERNALS = re.compile(r"\{\{function_node [^}]*\}\}|\[\[[^\]]*\]\]|\[Op:[^\]]*\]|\{\{node [^}]*\}\}")


def clean_message(message: str) -> str:
    """One line: TensorFlow's internal text removed, whitespace collapsed."""
    return " ".join(_TF_INTERNALS.sub(" ", str(message)).split())


def os_error_message(error: OSError) -> str:
    """A one-line explanation of a failed file operation, with what to do."""
    where = error.filename or ""
    if isinstance(error.filename2, str):
        where = f"{where} -> {error.filename2}"
    code = error.errno
    if code == errno.ENOSPC:
        fix = "the disk is full: free some space and run the same command again (finished work is kept)"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = f"cannot write there ({error.strerror}): choose a folder you can write to"
    elif code == errno.ENOTDIR:
        fix = "part of that path is a file, not a folder: choose another path"
    elif code == errno.ENOENT:
        fix = "no such file or folder: check the path"
    else:
        fix = f"{error.strerror or error}"
    return f"{where}: {fix}" if where else fix


def missing_extra_message(error: ImportError) -> str | None:
    """'needs X: pip install ...' for a missing optional package, else None."""
    if "pip install" in str(error):
        return str(error)
    name = (getattr(error, "name", None) or "").split(".")[0]
    if name in EXTRAS:
        return f"needs the optional package '{name}': pip install 'mater-tf[{EXTRAS[name]}]'"
    return None


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="mater-tf",
        description="MATER audio-visual emotion recognition: train, cross-validate, evaluate, export.",
    )
    parser.add_argument("--version", action="version", version=f"mater-tf {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages and TensorFlow's warnings"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"mater_tf.cli.{name}").register(subparsers)
    return parser


class _TerminalFormatter(logging.Formatter):
    """mater-tf's own INFO lines as they are; warnings and errors say so."""

    def format(self, record):
        message = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


def _configure_logging(verbose: bool) -> None:
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
        )
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_TerminalFormatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])  # no-op where logging is set up (pytest)
    # TensorFlow's and absl's warnings (retracing, deprecations) are library noise here,
    # and so are the libraries' Python warnings (Keras: "`shuffle=True` was passed, but ...").
    for name in ("tensorflow", "absl", "h5py", "matplotlib", "PIL"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings(
        "ignore", module=r"(keras|tensorflow|tf_keras|absl|h5py|google|tensorflow_hub)(\.|$)"
    )


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, a job scheduler, `docker stop`), taken like Ctrl-C: every path that keeps
    finished work on Ctrl-C keeps it here too, and atexit (TensorFlow's autograph files) runs."""


def _raise_terminated(signum, frame):
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turns SIGTERM into `Terminated` while a command runs (main thread only: Python runs signal
    handlers there); a handler someone else set is left alone, and the old one is restored."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv=None) -> int:
    """Runs the command line; returns the exit code (tests call this in-process)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Before TensorFlow is imported (the subcommands import it lazily): its C++ import
    # banner (cuFFT/cuDNN/cuBLAS "Unable to register") is level ERROR, so 3 hides it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1" if args.verbose else "3")
    configure_environment()
    if not args.command:
        parser.print_help()
        return 2
    _configure_logging(args.verbose)
    private_temporary_folder()
    prefix = f"mater-tf {args.command}: error:"
    try:
        with _sigterm_as_interrupt():
            return args.handler(args)
    except UserError as error:
        print(f"{prefix} {clean_message(error)}", file=sys.stderr)
    except ImportError as error:
        message = missing_extra_message(error)
        if message is None or args.verbose:
            raise
        print(f"{prefix} {clean_message(message)}", file=sys.stderr)
    except OSError as error:
        if args.verbose:
            raise
        print(f"{prefix} {clean_message(os_error_message(error))}", file=sys.stderr)
    except Terminated:
        print(f"mater-tf {args.command}: stopped by SIGTERM; {INTERRUPTED[args.command]}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"mater-tf {args.command}: interrupted; {INTERRUPTED[args.command]}", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
