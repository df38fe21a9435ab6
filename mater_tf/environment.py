"""Process environment that must be in place before TensorFlow runs an op."""

import contextlib
import os
import sys
import threading


def configure_environment() -> None:
    """Sets safe defaults for TensorFlow's environment; user values win.

    On some x86 CPUs oneDNN's AVX-512 kernels crash while training ordinary
    CNNs (see STACK.md); capping the ISA at AVX2 fixes it at full speed.
    """
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


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
