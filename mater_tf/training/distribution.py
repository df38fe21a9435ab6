"""Training on several devices or machines: `train.distribution` (none | mirrored | multi_worker).

- `mirrored`: every GPU of this machine, `tf.distribute.MirroredStrategy`, trained by
  Keras' own `fit` (one replica on a machine without a GPU).
- `multi_worker`: several processes or machines, `tf.distribute.MultiWorkerMirroredStrategy`.
  Every worker runs the same command; `TF_CONFIG` says which worker it is (the
  standard way, `read_tf_config`). Keras 3's `fit` cannot train under this
  strategy on TF 2.17 (keras-team/keras#20585, #20329): its first step reduces a
  data batch across workers (a `PerReplica` it cannot convert), and its step
  functions then reduce each scalar metric along an axis it does not have. So
  `fit_across_workers` runs its own epoch loop around Keras' public per-batch
  steps (`model.train_step`, `model.test_step`) under `strategy.run`, and calls
  the run's Keras callbacks as `fit` does, so the run's files come out the same.
  (`keras.distribution` was the other way offered; with the TensorFlow backend
  it is a DTensor prototype marked "DO NOT USE" that Keras' TF trainer never
  consults: it distributes training with the JAX backend only.)

`train.batch_size` stays the global batch: each of the N replicas gets 1/N of
every batch (the input pipeline runs whole on every worker, then
`AutoShardPolicy.DATA` keeps each worker's part), so a run is the run of one
device up to float rounding; only a last partial batch split unevenly weighs
its clips slightly differently.

Only the chief writes the run directory; the other workers write theirs to a
temporary folder that is deleted at the end (`writable_root`), the pattern of
TensorFlow's multi-worker guide. After training, evaluation, `model.keras` and
the export use a plain copy of the model (`plain_copy`), so they run as in a
single-device run, without collectives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mater_tf.config import ExperimentConfig
from mater_tf.environment import quiet_native_stderr
from mater_tf.errors import UserError

log = logging.getLogger(__name__)

# What TensorFlow's gRPC server and coordination agent log on every successful start, through
# absl (beyond TF_CPP_MIN_LOG_LEVEL's reach): dropped; any other native line still shows (one
# that says why a worker waits for its peers, for one).
START_UP_LINES = (
    "All log messages before absl::InitializeLog() is called",
    "Started server with target",
    "Coordination agent has successfully connected",
)

TF_CONFIG = "TF_CONFIG"
# MultiWorkerMirroredStrategy's task types: the chief (optional) and the workers.
WORKER_TYPES = ("chief", "worker")
TF_CONFIG_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)

_strategies: dict = {}


@dataclasses.dataclass(frozen=True)
class Worker:
    """This process's place in the cluster."""

    task_type: str = "worker"
    task_index: int = 0
    num_workers: int = 1
    has_chief_task: bool = False

    @property
    def is_chief(self) -> bool:
        """The chief writes the run; TensorFlow's rule: the `chief` task, else worker 0."""
        if self.has_chief_task:
            return self.task_type == "chief"
        return self.task_index == 0


def _bad_tf_config(problem: str) -> UserError:
    return UserError(
        f"TF_CONFIG {problem}; set it on every worker, e.g. {TF_CONFIG_EXAMPLE} "
        "(the same cluster everywhere, each worker its own index; docs/scaling_out.md)"
    )


def read_tf_config(environ: Mapping[str, str] | None = None) -> Worker:
    """This worker from `TF_CONFIG` (JSON: `cluster` of `chief`/`worker` addresses and `task`).

    Raises:
        UserError: one line naming what is wrong in TF_CONFIG and a value that works.
    """
    text = (os.environ if environ is None else environ).get(TF_CONFIG, "").strip()
    if not text:
        raise _bad_tf_config("is not set, and train.distribution=multi_worker needs it")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise _bad_tf_config(f"is not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("cluster"), dict):
        raise _bad_tf_config('has no "cluster" object')
    cluster, task = spec["cluster"], spec.get("task")
    for task_type, addresses in cluster.items():
        if task_type not in WORKER_TYPES:
            raise _bad_tf_config(
                f'has a "{task_type}" task type, which MultiWorkerMirroredStrategy does not use '
                "(only chief and worker)"
            )
        if not isinstance(addresses, list) or not addresses:
            raise _bad_tf_config(f'cluster "{task_type}" must be a non-empty list of "host:port"')
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not isinstance(address, str) or not host or not port.isdigit():
                raise _bad_tf_config(f'cluster "{task_type}" has {address!r}, not "host:port"')
            if not 0 < int(port) < 65536:
                raise _bad_tf_config(f'cluster "{task_type}" has {address!r}: a port is 1 to 65535')
    if len(cluster.get("chief", [])) > 1:
        raise _bad_tf_config("lists more than one chief")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise _bad_tf_config(f'"task" must name a type of the cluster ({", ".join(cluster)}) and an index')
    index = task.get("index", 0)
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise _bad_tf_config(
            f'task index {index!r} is not in [0, {len(cluster[task["type"]])}) for type "{task["type"]}"'
        )
    return Worker(
        task_type=task["type"],
        task_index=index,
        num_workers=sum(len(addresses) for addresses in cluster.values()),
        has_chief_task="chief" in cluster,
    )


def own_address(environ: Mapping[str, str] | None = None) -> str:
    """This task's "host:port" in a TF_CONFIG that `read_tf_config` accepted."""
    spec = json.loads((os.environ if environ is None else environ)[TF_CONFIG])
    task = spec["task"]
    return spec["cluster"][task["type"]][task.get("index", 0)]


def _port_taken_message(address: str, reason: str) -> str:
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
            raise UserError(_port_taken_message(address, "its port is in use")) from None
        # Anything else (no permission for a low port, ...): TensorFlow says what it is.
    finally:
        probe.close()


# How long a worker waits for every peer of TF_CONFIG to start (seconds; 0 = without end). TensorFlow
# waits up to an hour, in native code that Ctrl-C and SIGTERM do not reach.
CLUSTER_TIMEOUT_VARIABLE = "MATER_TF_CLUSTER_TIMEOUT"
DEFAULT_CLUSTER_TIMEOUT = 600.0
# A cluster whose peers are all up forms in about a second; only a longer wait is reported.
QUIET_WAIT_SECONDS = 5.0


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


def peers(environ: Mapping[str, str] | None = None) -> list[str]:
    """The other tasks of a TF_CONFIG that `read_tf_config` accepted: "worker 1 at host:port"."""
    spec = json.loads((os.environ if environ is None else environ)[TF_CONFIG])
    own = (spec["task"]["type"], spec["task"].get("index", 0))
    return [
        f"{task_type} {index} at {address}"
        for task_type, addresses in spec["cluster"].items()
        for index, address in enumerate(addresses)
        if (task_type, index) != own
    ]


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


def worker(config: ExperimentConfig) -> Worker:
    """This process's role: the only worker unless `train.distribution` is multi_worker."""
    if config.train.distribution == "multi_worker":
        return read_tf_config()
    return Worker()


def strategy_for(config: ExperimentConfig):
    """The process's `tf.distribute.Strategy` for `train.distribution` (None for none).

    Created once per process and kept: MultiWorkerMirroredStrategy must be made
    before TensorFlow runs its first op (call `start` early), and a process
    joins its cluster only once.
    """
    setting = config.train.distribution
    if setting == "none":
        return None
    if setting not in _strategies:
        import tensorflow as tf

        if setting == "mirrored":
            _strategies[setting] = tf.distribute.MirroredStrategy()
        else:
            read_tf_config()  # one clear line before TensorFlow's own errors
            check_own_port()
            wait_for_peers()
            try:
                with quiet_native_stderr(START_UP_LINES):
                    _strategies[setting] = tf.distribute.MultiWorkerMirroredStrategy()
            except RuntimeError as error:
                raise UserError(
                    f"train.distribution=multi_worker: TensorFlow could not join the cluster ({error}); "
                    "start each worker in a fresh process"
                ) from None
            except tf.errors.OpError as error:  # e.g. this task's port is taken
                raise UserError(
                    _port_taken_message(own_address(), error.message.strip().splitlines()[0])
                ) from None
        strategy = _strategies[setting]
        log.info("train.distribution=%s: %d replica(s) in sync", setting, strategy.num_replicas_in_sync)
    return _strategies[setting]


def start(config: ExperimentConfig) -> Worker:
    """Checks TF_CONFIG and joins the cluster before any TensorFlow op; returns this worker."""
    role = worker(config)
    strategy_for(config)
    return role


@contextlib.contextmanager
def writable_root(config: ExperimentConfig, root: Path):
    """The folder this worker writes the run to: `root` on the chief (and without
    multi_worker), else a temporary folder deleted when the block ends."""
    role = worker(config)
    if role.is_chief:
        yield Path(root)
        return
    scratch = Path(tempfile.mkdtemp(prefix=f"mater-tf-{role.task_type}{role.task_index}-"))
    log.info(
        "%s %d is not the chief: it writes to %s (deleted at the end)",
        role.task_type,
        role.task_index,
        scratch,
    )
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def is_multi_worker(strategy) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def check_workers_agree(strategy, finished: bool, start_epoch: int, run_root: Path) -> None:
    """Refuses to go on when the workers disagree on where the run stands (finished, first epoch).

    Each worker reads that from the run directory it sees; a multi-worker run
    resumes only where every worker reads the chief's run directory (shared
    storage), as TensorFlow's own BackupAndRestore requires.
    """
    import tensorflow as tf

    values = tf.constant([float(finished), float(start_epoch)])

    @tf.function
    def mean_and_square():
        return strategy.run(lambda: tf.stack([values, values * values]))

    moments = strategy.reduce(tf.distribute.ReduceOp.MEAN, mean_and_square(), axis=None).numpy()
    if (moments[1] - moments[0] ** 2 > 1e-6).any():
        where = "finished" if finished else f"at epoch {start_epoch + 1}"
        raise UserError(
            f"the workers disagree on where {run_root} stands (this worker sees it {where}): a multi-worker "
            "run resumes only from a run directory every worker reads (shared storage); pass --restart on "
            "every worker to train it again from the start"
        )


def fit_across_workers(
    model,
    strategy,
    train_data,
    validation_data,
    *,
    epochs: int,
    initial_epoch: int,
    steps_per_epoch: int,
    validation_steps: int,
    callbacks: list,
    verbose: int,
):
    """`model.fit` for MultiWorkerMirroredStrategy (see the module doc): the same epochs,
    logs and callback calls, each batch split across the replicas of every worker.

    Returns:
        The `keras.callbacks.History` of the epochs trained.
    """
    import keras
    import tensorflow as tf

    options = tf.data.Options()
    # Every worker runs the whole pipeline (its order is a pure function of seed and epoch)
    # and keeps its part of each global batch: no shard file or subject is skipped.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_data = train_data.with_options(options)
    if validation_data is not None:
        validation_data = strategy.experimental_distribute_dataset(validation_data.with_options(options))
    inputs, targets = train_data.element_spec[:2]
    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        # What fit does before its first step, from the batch's shapes instead of a batch
        # reduced across workers (where fit fails, keras#20585): builds the compiled losses
        # and metrics, whose variables cannot be made inside strategy.run.
        model._symbolic_build(data_batch=(inputs, targets, None))

    def distributed(step):
        @tf.function
        def run(iterator):
            outputs = strategy.run(step, args=(next(iterator),))
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in outputs.items()}

        return run

    train_step, test_step = distributed(model.train_step), distributed(model.test_step)
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history],
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=epochs,
        steps=steps_per_epoch,
        model=model,
    )
    batches = iter(strategy.experimental_distribute_dataset(train_data))
    model.stop_training = False
    callback_list.on_train_begin()
    epoch_logs: dict = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            callback_list.on_train_batch_end(step, train_step(batches))
            if model.stop_training:  # TerminateOnNaN: every worker sees the same reduced loss
                break
        # The metrics' totals summed over every replica (what fit reports too).
        epoch_logs = dict(model.get_metrics_result())
        if validation_data is not None:
            model.reset_metrics()
            validation_batches = iter(validation_data)
            for _ in range(validation_steps):
                test_step(validation_batches)
            epoch_logs.update({f"val_{k}": v for k, v in model.get_metrics_result().items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    if epochs > initial_epoch:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=epoch_logs)
    return history


def plain_copy(task, model, epochs: int, steps_per_epoch: int):
    """The trained model outside the strategy: same weights, optimizer state and random
    streams, evaluated, saved and exported exactly as a single-device run's model."""
    from mater_tf.training.callbacks import _seed_generator_states
    from mater_tf.training.task import finalize_normalizations

    copy = task.build_model()
    copy.set_weights(model.get_weights())
    finalize_normalizations(copy)
    task.compile(copy, epochs, steps_per_epoch)
    copy.optimizer.build(copy.trainable_variables)
    pairs = [
        (copy.optimizer.variables, model.optimizer.variables),
        (_seed_generator_states(copy), _seed_generator_states(model)),
    ]
    for targets, sources in pairs:
        if len(targets) != len(sources):  # pragma: no cover - the same task builds both
            raise RuntimeError("the plain copy of the model has other variables than the trained one")
        for target, source in zip(targets, sources):
            target.assign(source.value)
    return copy
