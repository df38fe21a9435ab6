"""What `train.distribution` (none | mirrored | multi_worker) means for this process: its
strategy, where it writes, and how the fit loop trains under it.

- `none`: one device, Keras' own `fit`.
- `mirrored`: every GPU of this machine, `tf.distribute.MirroredStrategy`, trained by
  Keras' own `fit` (one replica on a machine without a GPU).
- `multi_worker`: several processes or machines, `tf.distribute.MultiWorkerMirroredStrategy`.
  Every worker runs the same command; `TF_CONFIG` says which worker it is (`cluster`).
  Keras' `fit` cannot train under this strategy, so an epoch loop of its own does
  (`multi_worker_fit`).

The fit loop (`trainer.fit_run`) reads the same for all three: it asks `for_config`
for the run's `Distribution` and leaves to it the differences (the scope models are
built in, the workers' agreement on where a resumed run stands, the fit itself,
and the plain copy of a model trained under a strategy).

Only the chief writes the run directory; the other workers write theirs to a
temporary folder that is deleted at the end (`writable_root`), the pattern of
TensorFlow's multi-worker guide. After training, evaluation, `model.keras` and
the export use a plain copy of the model (`model_copy.plain_copy`), so they run as in a
single-device run, without collectives.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from pathlib import Path

from mater_tf.config import ExperimentConfig
from mater_tf.environment import quiet_native_stderr
from mater_tf.errors import UserError
from mater_tf.training import cluster, cluster_wait

log = logging.getLogger(__name__)

# What TensorFlow's gRPC server and coordination agent log on every successful start, through
# absl (beyond TF_CPP_MIN_LOG_LEVEL's reach): dropped; any other native line still shows (one
# that says why a worker waits for its peers, for one).
START_UP_LINES = (
    "All log messages before absl::InitializeLog() is called",
    "Started server with target",
    "Coordination agent has successfully connected",
)

_strategies: dict = {}


def worker(config: ExperimentConfig) -> cluster.Worker:
    """This process's role: the only worker unless `train.distribution` is multi_worker."""
    if config.train.distribution == "multi_worker":
        return cluster.read_tf_config()
    return cluster.Worker()


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
            cluster.read_tf_config()  # one clear line before TensorFlow's own errors
            cluster_wait.check_own_port()
            cluster_wait.wait_for_peers()
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
                    cluster_wait.port_taken_message(
                        cluster.own_address(), error.message.strip().splitlines()[0]
                    )
                ) from None
        strategy = _strategies[setting]
        log.info("train.distribution=%s: %d replica(s) in sync", setting, strategy.num_replicas_in_sync)
    return _strategies[setting]


def start(config: ExperimentConfig) -> cluster.Worker:
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


class Distribution:
    """Training on one device (`train.distribution=none`): Keras' own `fit`, and the model
    evaluated, saved and exported as it was trained. The other settings override what differs."""

    strategy = None

    def check_workers_agree(self, finished: bool, start_epoch: int, run_root: Path) -> None:
        """Refuses a run that the workers see at different epochs (one worker: nothing to check)."""

    def scope(self):
        """The context the model is built, compiled and restored in."""
        return contextlib.nullcontext()

    def fit(self, model, train_data, validation_data, **options):
        """Trains `model` as `model.fit(train_data, validation_data=..., **options)`; its History."""
        return model.fit(
            train_data,
            validation_data=validation_data,
            # The input pipeline shuffles each epoch (seeded by the epoch).
            shuffle=False,
            **options,
        )

    def single_device_model(self, task, model, epochs: int, steps_per_epoch: int):
        """The trained model as evaluation, `model.keras` and the export take it."""
        return model


class MirroredDistribution(Distribution):
    """Training under a strategy's scope (`mirrored`: every GPU of this machine) by Keras' `fit`;
    evaluated, saved and exported through a plain copy, as a single-device run's model is."""

    def __init__(self, strategy):
        self.strategy = strategy

    def scope(self):
        return self.strategy.scope()

    def single_device_model(self, task, model, epochs: int, steps_per_epoch: int):
        from mater_tf.training import model_copy

        return model_copy.plain_copy(task, model, epochs, steps_per_epoch)


class MultiWorkerDistribution(MirroredDistribution):
    """Training across the workers of TF_CONFIG: they must agree on where the run stands, and
    train with `multi_worker_fit`'s epoch loop instead of Keras' `fit`."""

    def check_workers_agree(self, finished: bool, start_epoch: int, run_root: Path) -> None:
        from mater_tf.training import multi_worker_fit

        multi_worker_fit.check_workers_agree(self.strategy, finished, start_epoch, run_root)

    def fit(self, model, train_data, validation_data, *, validation_steps=None, **options):
        from mater_tf.training import multi_worker_fit

        return multi_worker_fit.fit_across_workers(
            model,
            self.strategy,
            train_data,
            validation_data,
            validation_steps=validation_steps or 0,
            **options,
        )


def for_config(config: ExperimentConfig) -> Distribution:
    """How a run of `config` trains (the process's strategy is made on the first call)."""
    strategy = strategy_for(config)
    if strategy is None:
        return Distribution()
    if is_multi_worker(strategy):
        return MultiWorkerDistribution(strategy)
    return MirroredDistribution(strategy)
