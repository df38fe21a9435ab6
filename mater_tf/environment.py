"""Process environment that must be in place before TensorFlow runs an op."""

import atexit
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path

# This process's folder in the system's temporary folder: mater-tf-tmp-HOST-PID.
PRIVATE_TEMPORARY_PREFIX = "mater-tf-tmp-"
_private_temporary: list[Path] = []


def configure_environment() -> None:
    """Sets safe defaults for TensorFlow's environment; user values win.

    On some x86 CPUs oneDNN's AVX-512 kernels crash while training ordinary
    CNNs (see STACK.md); capping the ISA at AVX2 fixes it at full speed.
    """
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def private_temporary_folder() -> Path:
    """Points Python's temporary files at a folder of this process, removed at exit, after
    removing the folders of this host's mater-tf processes that are gone.

    TensorFlow's autograph writes a file per converted function (`__autograph_generated_file*.py`)
    and deletes them at exit; a process killed with SIGKILL (or out of memory) left them in the
    system's temporary folder for good. Its folder is removed at the next start instead.
    """
    if _private_temporary:
        return _private_temporary[0]
    base = Path(tempfile.gettempdir())
    host = f"{PRIVATE_TEMPORARY_PREFIX}{socket.gethostname()}-"  # pids of other hosts (containers) differ
    for folder in base.glob(f"{host}*"):
        pid = folder.name[len(host) :]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    own = base / f"{host}{os.getpid()}"
    try:
        own.mkdir(exist_ok=True)
    except OSError:  # a read-only temporary folder: TensorFlow says what it is, as before
        return base
    atexit.register(shutil.rmtree, own, True)
    tempfile.tempdir = str(own)
    _private_temporary.append(own)
    return own


@contextlib.contextmanager
def quiet_native_stderr(drop: tuple[str, ...]):
    """Drops the lines containing one of `drop` that native code (TensorFlow's C++ runtime, gRPC,
    absl) writes to the process's stderr inside the block, and passes every other line on as it
    comes. Some native code logs through absl, which TF_CPP_MIN_LOG_LEVEL does not reach. With
    TF_CPP_MIN_LOG_LEVEL 0 or 1 (`--verbose`) nothing is dropped."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("0", "1"):
        yield
        return
    patterns = [text.encode() for text in drop]
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()

    def forward():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not any(pattern in line for pattern in patterns):
                    os.write(saved, line)

    thread = threading.Thread(target=forward, name="mater-tf-stderr", daemon=True)
    thread.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the forwarder reads to its end
        thread.join(timeout=5)
        if not thread.is_alive():
            os.close(saved)
