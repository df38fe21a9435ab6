"""Process environment that must be in place before TensorFlow runs an op."""

import os


def configure_environment() -> None:
    """Sets safe defaults for TensorFlow's environment; user values win.

    On some x86 CPUs oneDNN's AVX-512 kernels crash while training ordinary
    CNNs (see STACK.md); capping the ISA at AVX2 fixes it at full speed.
    """
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
