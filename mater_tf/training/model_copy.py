"""A trained model's plain copy: the same weights, optimizer state and random streams in a model
built outside any `tf.distribute` strategy.

A run trained under a strategy is evaluated, saved and exported through this
copy, so those steps run exactly as in a single-device run, without
collectives.
"""

from __future__ import annotations

import keras

from mater_tf.training.callbacks import _seed_generator_states


def finalize_normalizations(model: keras.Model) -> None:
    """Makes every adapted Normalization layer of `model` use its (assigned) statistics:
    `set_weights` assigns their variables, but the layer keeps the tensors it made at build."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()


def plain_copy(task, model, epochs: int, steps_per_epoch: int):
    """The trained model outside the strategy: same weights, optimizer state and random
    streams, evaluated, saved and exported exactly as a single-device run's model."""
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
