"""Before a worker joins its cluster: its own port is free, and every peer of TF_CONFIG listens.

TensorFlow's own start-up of `MultiWorkerMirroredStrategy` reports a taken port
in several lines of its C++ runtime, and waits for missing peers up to an hour
in native code that neither Ctrl-C nor SIGTERM reach. These checks run first,
in Python: one line for a taken port, and a wait that says whom it waits for,
ends on either signal and gives up after `cluster_timeout()`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from mater_tf.errors import UserError
from mater_tf.training.cluster import own_address, peers

log = logging.getLogger(__name__)

# How long a worker waits for every peer of TF_CONFIG to start (seconds; 0 = without end). TensorFlow
# waits up to an hour, in native code that Ctrl-C and SIGTERM do not reach.
CLUSTER_TIMEOUT_VARIABLE = "MATER_TF_CLUSTER_TIMEOUT"
DEFAULT_CLUSTER_TIMEOUT = 600.0
# A cluster whose peers are all up forms in about a second; only a longer wait is reported.
QUIET_WAIT_SECONDS = 5.0


def port_taken_message(address: str, reason: str) -> str:
    """The line that says this worker could not start at `address`, and what to do."""
    return (
        f"train.distribution=multi_worker: this worker could not start at {address} ({reason}); "
        "free that port (a worker of an earlier run still alive?) or give this task another address in TF_CONFIG"
    )


def check_own_port(environ: Mapping[str, str] | None = None) -> None:
    """Refuses, in one line, an own port that another process listens on, before TensorFlow's
    gRPC server tries it (which prints several lines of its C++ runtime, whatever
    TF_CPP_MIN_LOG_LEVEL says). The server binds the port on every interface with
    SO_REUSEADDR, so the probe does the same: a port left in TIME_WAIT by an earlier run passes.

    Raises:
        UserError: the port is in use.
    """
    import errno
    import socket

    address = own_address(environ)
    port = int(address.rpartition(":")[2])
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("", port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UserError(port_taken_message(address, "its port is in use")) from None
        # Anything else (no permission for a low port, ...): TensorFlow says what it is.
    finally:
        probe.close()


def cluster_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a worker waits for its peers: MATER_TF_CLUSTER_TIMEOUT, else 600 (0: no limit)."""
    text = (os.environ if environ is None else environ).get(CLUSTER_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_CLUSTER_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise UserError(
            f"{CLUSTER_TIMEOUT_VARIABLE}={text!r} is not a number of seconds; give e.g. "
            f"{CLUSTER_TIMEOUT_VARIABLE}=600 (0 waits for the peers without end)"
        )
    return seconds


def _not_listening(peer: str) -> bool:
    """Whether nothing accepts a connection at a peer's address (it has not started)."""
    import socket

    host, _, port = peer.rpartition(" at ")[2].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
    except OSError:
        return True
    return False


def wait_for_peers(environ: Mapping[str, str] | None = None) -> None:
    """Waits, in Python, until every other task of TF_CONFIG listens at its address.

    TensorFlow's own wait (inside MultiWorkerMirroredStrategy) holds the interpreter for up to an
    hour in native code: no line, and neither Ctrl-C nor SIGTERM reach Python. Here the wait says
    whom it waits for (after a few quiet seconds), ends on either signal, and gives up after
    `cluster_timeout()`. Meanwhile this worker's own port accepts connections, so that peers
    waiting the same way see it up; TensorFlow's server takes the port over once all are up.

    Raises:
        UserError: a peer did not start in time.
    """
    import socket
    import time

    timeout = cluster_timeout(environ)
    others = peers(environ)
    if not others:
        return
    placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        placeholder.bind(("", int(own_address(environ).rpartition(":")[2])))
        placeholder.listen()
    except OSError:  # not this process's to report: TensorFlow's server says what it is
        placeholder.close()
    started, told = time.monotonic(), False
    try:
        while missing := [peer for peer in others if _not_listening(peer)]:
            waited = time.monotonic() - started
            if timeout and waited >= timeout:
                raise UserError(
                    f"train.distribution=multi_worker: {', '.join(missing)} did not start within {timeout:g} s; "
                    "start the same command there with its TF_CONFIG (each worker its own task), or wait "
                    f"longer with {CLUSTER_TIMEOUT_VARIABLE}=SECONDS (0: without end)"
                )
            if not told and waited >= QUIET_WAIT_SECONDS:
                log.info(
                    "waiting for the other workers of TF_CONFIG to start: %s (%s; Ctrl-C ends it)",
                    ", ".join(missing),
                    f"up to {timeout:g} s, {CLUSTER_TIMEOUT_VARIABLE}" if timeout else "without end",
                )
                told = True
            time.sleep(0.25)
    finally:
        placeholder.close()
