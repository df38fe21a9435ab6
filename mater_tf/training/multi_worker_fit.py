"""Training under `tf.distribute.MultiWorkerMirroredStrategy`: the epoch loop, and the workers'
agreement on where a resumed run stands.

Keras 3's `fit` cannot train under this strategy on TF 2.17 (keras-team/keras#20585,
#20329): its first step reduces a data batch across workers (a `PerReplica` it
cannot convert), and its step functions then reduce each scalar metric along an
axis it does not have. So `fit_across_workers` runs its own epoch loop around
Keras' public per-batch steps (`model.train_step`, `model.test_step`) under
`strategy.run`, and calls the run's Keras callbacks as `fit` does, so the run's
files come out the same. (`keras.distribution` was the other way offered; with
the TensorFlow backend it is a DTensor prototype marked "DO NOT USE" that Keras'
TF trainer never consults: it distributes training with the JAX backend only.)

`train.batch_size` stays the global batch: each of the N replicas gets 1/N of
every batch (the input pipeline runs whole on every worker, then
`AutoShardPolicy.DATA` keeps each worker's part), so a run is the run of one
device up to float rounding; only a last partial batch split unevenly weighs
its clips slightly differently.
"""

from __future__ import annotations

from pathlib import Path

from mater_tf.errors import UserError


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
