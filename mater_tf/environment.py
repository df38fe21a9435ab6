"""Process environment that must be in place before TensorFlow runs an op."""

import contextlib
import os
import sys
import tempfile


def configure_environment() -> None:
    """Sets safe defaults for TensorFlow's environment; user values win.

    On some x86 CPUs oneDNN's AVX-512 kernels crash while training ordinary
    CNNs (see STACK.md); capping the ISA at AVX2 fixes it at full speed.
    """
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@contextlib.contextmanager
def quiet_native_stderr():
    """Holds back what native code (TensorFlow's C++ runtime, gRPC, absl) writes to the process's
    stderr inside the block: some of it logs through absl, which TF_CPP_MIN_LOG_LEVEL does not
    reach ("Started server with target", "Could not start gRPC server"). The held-back text is
    dropped; with TF_CPP_MIN_LOG_LEVEL below 2 (`--verbose`) nothing is held back."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("0", "1"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)
