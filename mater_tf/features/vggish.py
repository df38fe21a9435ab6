"""VGGish (Hershey et al. 2017) in Keras, loadable from the official weights.

Architecture (tensorflow/models research/audioset/vggish, vggish_slim.py):
conv 3x3 / stride 1 / SAME + ReLU, max-pool 2x2 / stride 2 / SAME:
64, pool, 128, pool, 256, 256, pool, 512, 512, pool, then fc 4096, 4096 (ReLU)
and fc 128 (no ReLU) on 96-frame patches.

The paper embeds 0.5 s and 0.25 s windows (48 and 23 frames: the log-mel frames whose
25 ms lie inside the window, see mater_tf.data.extraction) with the
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
from mater_tf.layers import vggish_layers

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


HUB_HANDLE_PREFIXES = ("https://", "http://", "gs://")


def is_hub_handle(source) -> bool:
    """Whether `source` is a TF-Hub handle (a URL tensorflow_hub downloads) rather than a local path."""
    return isinstance(source, str) and source.startswith(HUB_HANDLE_PREFIXES)


def _import_hub():
    try:
        import tensorflow_hub as hub
    except ImportError:
        raise UserError(
            "loading VGGish from TF-Hub needs tensorflow-hub: pip install 'mater-tf[media]'"
        ) from None
    return hub


def resolve_hub_handle(handle: str) -> str:
    """The local folder of a TF-Hub handle: downloaded once into tensorflow_hub's cache
    (`TFHUB_CACHE_DIR`, default a folder in the system's temp dir), then read from there."""
    hub = _import_hub()
    try:
        return hub.resolve(handle)
    except Exception as error:  # noqa: BLE001 - urllib, gfile and tarfile each raise their own
        raise UserError(
            f"cannot fetch the TF-Hub model {handle} ({error}); download it where there is a network "
            "and give its folder, or set TFHUB_CACHE_DIR to a cache that holds it"
        ) from None


def _variables_from_hub(path: str) -> dict:
    """Variables of a TF-Hub VGGish SavedModel, loaded with `hub.load` (they keep the checkpoint names).

    TF-Hub's VGGish (`vggish_export_tfhub.py` in tensorflow/models) is a TF2 SavedModel of a
    `tf.Module` whose variables are named as the checkpoint's (`vggish/conv1/weights:0`, ...),
    created from it by name; a TF1-style
    SavedModel stores them under those names in variables/variables, read directly when
    `hub.load` lists none.
    """
    import tensorflow as tf

    hub = _import_hub()
    try:
        loaded = hub.load(path)
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise UserError(
            f"{path}: not a loadable TF-Hub SavedModel ({error}); give a VGGish model folder"
        ) from None
    # Every variable the loaded object holds (TF-Hub's VGGish keeps them in a `_variables` list,
    # Reusable SavedModels in `variables`), found by walking its trackable objects.
    held = [item for item in tf.train.TrackableView(loaded).descendants() if isinstance(item, tf.Variable)]
    variables = {variable.name.split(":")[0]: variable.numpy() for variable in held}
    if any(name.startswith("vggish/") for name in variables):
        return variables
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def read_vggish_variables(source) -> dict:
    """Checkpoint variable name -> array, from a mapping, a TF1 checkpoint, a TF-Hub handle or
    a TF-Hub (SavedModel) folder."""
    if isinstance(source, Mapping):
        return {name: np.asarray(value) for name, value in source.items()}
    if is_hub_handle(source):
        return _variables_from_hub(resolve_hub_handle(source))
    path = os.fspath(source)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb")):
        return _variables_from_hub(path)
    if os.path.isfile(path + ".index") or os.path.isfile(path) and path.endswith(".index"):
        return _variables_from_checkpoint(path[: -len(".index")] if path.endswith(".index") else path)
    if os.path.isdir(path):
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(path)
        if latest:
            return _variables_from_checkpoint(latest)
    raise UserError(
        f"{path}: not a VGGish checkpoint (vggish_model.ckpt with its .index), a TF-Hub handle nor a "
        "TF-Hub VGGish SavedModel folder; give one of them"
    )


def load_vggish_weights(model: keras.Model, source) -> keras.Model:
    """Copies the official VGGish weights into a `build_vggish` model.

    Args:
        model: from `build_vggish` (any output).
        source: a mapping of checkpoint names (`vggish/conv1/weights`, ...) to
            arrays, a TF1 checkpoint path (`vggish_model.ckpt`), a TF-Hub handle
            (`https://tfhub.dev/google/vggish/1`, downloaded once into tensorflow_hub's
            cache) or a TF-Hub VGGish SavedModel directory (loaded with `hub.load`).

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
