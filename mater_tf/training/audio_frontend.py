"""A learned audio front end made ready to train: its VGGish weights and the training split's
statistics.

A model with `model.learns_audio` reads log-mel windows through an
`audio_frontend` layer. Before training, its VGGish network gets the weights
`model.audio_frontend_weights` names, its "band" normalisation adapts to the
training split's valid windows, and (with `model.utterance_functionals`) the
utterance functionals are standardised on the same split.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mater_tf.config import ModelConfig
from mater_tf.data import schema


def prepare_audio_frontend(
    model: keras.Model, config: ModelConfig, train_data: tf.data.Dataset | None
) -> None:
    """Loads the front end's weights, sets whether it trains, and adapts its normalisations to
    `train_data` (the training split; None leaves them as built)."""
    frontend_layer = model.get_layer("audio_frontend")
    if config.audio_frontend_weights:
        load_vggish_frontend(frontend_layer.frontend, config.audio_frontend_weights)
    frontend_layer.frontend.trainable = config.audio_frontend_trainable
    if train_data is None:
        return
    valid_name = schema.MODEL_INPUTS["audio"][1]
    frontend_layer.adapt(
        train_data.map(
            lambda inputs, *_: tf.boolean_mask(inputs[schema.LOG_MEL_INPUT], inputs[valid_name] > 0)
        )
    )
    if config.utterance_functionals:
        # Standardised with the training split's statistics, as the field's SVM baseline is.
        functionals = model.get_layer("utterance_functionals")
        standardize(
            model.get_layer("utterance_normalization"),
            train_data.map(
                lambda inputs, *_: functionals(
                    inputs[schema.LOG_MEL_INPUT],
                    inputs[schema.VOICE_DESCRIPTORS_INPUT],
                    inputs[valid_name],
                )
            ),
        )


def standardize(layer: keras.layers.Normalization, data) -> None:
    """Adapts a Normalization layer to `data`, leaving features that never vary unscaled (variance
    1, as scikit-learn's StandardScaler does): Keras would divide them by 1e-7, and any value
    other than the training one would then swamp the output."""
    layer.adapt(data)
    variance = keras.ops.convert_to_numpy(layer.adapt_variance)
    layer.adapt_variance.assign(np.where(variance < 1e-8, 1.0, variance).astype(variance.dtype))
    layer.finalize_state()


def load_vggish_frontend(frontend: keras.Model, source: str) -> None:
    """Fills a VGGish front end from a checkpoint, a TF-Hub folder or a converted .weights.h5."""
    from mater_tf.features.vggish import CONV_LAYERS, build_vggish, load_vggish_weights

    if source.endswith(".weights.h5"):  # made by mater-tf weights convert-vggish
        converted = build_vggish("conv4_2")
        converted.load_weights(source)
        source = {
            f"{scope}/{kind}": value
            for layer, scope in CONV_LAYERS.items()
            for kind, value in zip(("weights", "biases"), converted.get_layer(layer).get_weights())
        }
    load_vggish_weights(frontend, source)
