"""The media front end's errors: `MediaError` for a clip that cannot be used, and the reason
a TensorFlow op error gives (the audio graph's decoders fail with op errors)."""

from __future__ import annotations

import itertools
import re

from mater_tf.errors import UserError


class MediaError(UserError):
    """A clip that cannot be used: missing, corrupt, no audio track, too short, ..."""


def op_error_reason(message: str) -> str:
    """The line of a TensorFlow op error's message that says what went wrong, without TensorFlow's
    wrapping: "sample rate 1 Hz: too far from 16000 Hz ...", "unknown file type: clip.mp3".

    A failure inside a `tf.function` begins "Graph execution error:" and a stack of the
    Python lines that built the node; the reason comes after. A failure inside a
    `tf.py_function` carries the inner error as "module.InvalidArgumentError: {{function_node
    ...}} reason [Op:...]", and an assertion its data as "[text] [value] [text]".
    """
    skipped = ("Graph execution error", "Detected at node", "File ", "[[", "Traceback", "^")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith(skipped)]
    reason = (reasons or lines or [message])[-1]
    reason = re.sub(r"^(?:[\w.]+\.)?\w+(?:Error|Exception): ", "", reason)
    reason = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", reason)
    reason = re.sub(r"\s*\[Op:[^\]]*\]$", "", reason)
    if reason.startswith("assertion failed: ["):
        parts = re.findall(r"\[([^\]]*)\]", reason)
        # assert_less_equal and friends append "Condition x <= y did not hold" and node names.
        kept = itertools.takewhile(lambda part: not part.startswith("Condition "), parts)
        reason = " ".join(kept)
    return reason.removeprefix("assertion failed: ")
