"""VGGish (Hershey et al. 2017) in Keras, loadable from the official weights.

Architecture (tensorflow/models research/audioset/vggish, vggish_slim.py):
conv 3x3 / stride 1 / SAME + ReLU, max-pool 2x2 / stride 2 / SAME:
64, pool, 128, pool, 256, 256, pool, 512, 512, pool, then fc 4096, 4096 (ReLU)
and fc 128 (no ReLU) on 96-frame patches.

The paper embeds 0.5 s and 0.25 s windows (48 and 23 frames: the log-mel frames whose
25 ms lie inside the window, see mater_tf.extraction) with the
last conv layer (512-d after spatial averaging), which the released TF-Hub
model cannot do (it only emits 128-d embeddings of complete 0.96 s patches).
So the *weights* of the checkpoint or of the TF-Hub SavedModel are loaded
into this Keras network, which accepts patches of any number of frames.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import keras
import numpy as np

from mater_tf.errors import UserError
from mater_tf.layers.frontends import vggish_layers

NUM_BANDS = 64
EMBEDDING_FRAMES = 96
OUTPUTS = ("conv4_2", "pool4", "embedding")

# Keras layer name -> checkpoint scope, in network order.
CONV_LAYERS = {
    "conv1": "vggish/conv1",
    "conv2": "vggish/conv2",
    "conv3_1": "vggish/conv3/conv3_1",
    "conv3_2": "vggish/conv3/conv3_2",
    "conv4_1": "vggish/conv4/conv4_1",
    "conv4_2": "vggish/conv4/conv4_2",
}
FC_LAYERS = {"fc1_1": "vggish/fc1/fc1_1", "fc1_2": "vggish/fc1/fc1_2", "fc2": "vggish/fc2"}
CHECKPOINT_SHAPES = {
    "vggish/conv1": (3, 3, 1, 64),
    "vggish/conv2": (3, 3, 64, 128),
    "vggish/conv3/conv3_1": (3, 3, 128, 256),
    "vggish/conv3/conv3_2": (3, 3, 256, 256),
    "vggish/conv4/conv4_1": (3, 3, 256, 512),
    "vggish/conv4/conv4_2": (3, 3, 512, 512),
    "vggish/fc1/fc1_1": (12288, 4096),
    "vggish/fc1/fc1_2": (4096, 4096),
    "vggish/fc2": (4096, 128),
}


def build_vggish(output: str = "conv4_2", trainable: bool = True) -> keras.Model:
    """The VGGish network on log-mel patches [batch, frames, 64].

    Args:
        output: "conv4_2" (last conv + ReLU, [b, ceil(F/8), 8, 512]), "pool4"
            ([b, ceil(F/16), 4, 512]) or "embedding" (128-d; 96-frame patches only).
        trainable: whether the weights train.

    Returns:
        A Keras model named "vggish" whose layers carry the checkpoint's names
        (conv1 ... conv4_2, fc1_1, fc1_2, fc2).
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    frames = EMBEDDING_FRAMES if output == "embedding" else None
    patches = keras.Input((frames, NUM_BANDS), name="log_mel")
    x = keras.layers.Reshape((-1, NUM_BANDS, 1), name="add_channel")(patches)
    x = vggish_layers(x, until="pool4" if output != "conv4_2" else "conv4_2")
    if output == "embedding":
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(4096, activation="relu", name="fc1_1")(x)
        x = keras.layers.Dense(4096, activation="relu", name="fc1_2")(x)
        x = keras.layers.Dense(128, name="fc2")(x)
    model = keras.Model(patches, x, name="vggish")
    model.trainable = trainable
    return model


def _variables_from_checkpoint(path: str) -> dict:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def _variables_from_saved_model(path: str) -> dict:
    """Variables of a TF-Hub VGGish SavedModel (they keep the checkpoint names).

    A TF-Hub TF2 SavedModel lists its variables in `.variables` (the Reusable
    SavedModel interface); a TF1-style SavedModel stores them under their
    graph names in variables/variables, which is read directly.
    """
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    names = reader.get_variable_to_shape_map()
    if any(name.startswith("vggish/") for name in names):
        return {name: reader.get_tensor(name) for name in names}
    loaded = tf.saved_model.load(path)
    return {variable.name.split(":")[0]: variable.numpy() for variable in getattr(loaded, "variables", [])}


def read_vggish_variables(source) -> dict:
    """Checkpoint variable name -> array, from a mapping, a TF1 checkpoint or a SavedModel dir."""
    if isinstance(source, Mapping):
        return {name: np.asarray(value) for name, value in source.items()}
    path = os.fspath(source)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb")):
        return _variables_from_saved_model(path)
    if os.path.isfile(path + ".index") or os.path.isfile(path) and path.endswith(".index"):
        return _variables_from_checkpoint(path[: -len(".index")] if path.endswith(".index") else path)
    if os.path.isdir(path):
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(path)
        if latest:
            return _variables_from_checkpoint(latest)
    raise UserError(
        f"{path}: not a VGGish checkpoint (vggish_model.ckpt with its .index) nor a TF-Hub VGGish "
        "SavedModel folder; give the path of one of them"
    )


def load_vggish_weights(model: keras.Model, source) -> keras.Model:
    """Copies the official VGGish weights into a `build_vggish` model.

    Args:
        model: from `build_vggish` (any output).
        source: a mapping of checkpoint names (`vggish/conv1/weights`, ...) to
            arrays, a TF1 checkpoint path (`vggish_model.ckpt`), or a TF-Hub
            VGGish SavedModel directory.

    Raises:
        UserError: naming the first missing or misshapen variable.
    """
    variables = read_vggish_variables(source)
    layer_names = {layer.name for layer in model.layers}
    for layer_name, scope in {**CONV_LAYERS, **FC_LAYERS}.items():
        if layer_name not in layer_names:
            continue
        weights, biases = (variables.get(f"{scope}/weights"), variables.get(f"{scope}/biases"))
        if weights is None or biases is None:
            raise UserError(f"VGGish weights lack {scope}/weights or /biases: not a VGGish checkpoint")
        if tuple(weights.shape) != CHECKPOINT_SHAPES[scope]:
            raise UserError(
                f"VGGish variable {scope}/weights has shape {tuple(weights.shape)}, "
                f"expected {CHECKPOINT_SHAPES[scope]}: not the VGGish layout"
            )
        model.get_layer(layer_name).set_weights([weights, biases])
    return model
