"""Window embedders named by a spec string, as `mater-tf prepare` takes them.

Face (`--face-embedder`), on RGB uint8 face crops:
  * `vggm:PATH`  VGG-M, from the MatConvNet .mat or a .keras file made by
    `mater-tf weights convert-vggm`; 96x96 crops; relu5 spatial mean, 512-d.
  * `keras:PATH[:LAYER]`  any Keras model file; the output of LAYER (default:
    the last feature map before the classifier), spatially averaged if it is
    a feature map.
    Crops are resized to the model's input size, made grey if it takes one
    channel, and scaled to [-1, 1] (the FER2013 Keras convention, e.g.
    ../shared/weights/fer2013_mini_xception.hdf5).

Audio (`--audio-embedder`), on the log-mel frames of one window:
  * `vggish:PATH`  VGGish conv4_2 spatial mean, 512-d; PATH is a VGGish
    checkpoint, a TF-Hub handle (https://tfhub.dev/google/vggish/1, fetched once
    into tensorflow_hub's cache), a downloaded TF-Hub VGGish folder, or a
    .weights.h5 made by `mater-tf weights convert-vggish`.
  * `logmel`  no learned weights: per-band mean and standard deviation of the
    window's log-mel frames, 128-d.

Every embedding is l2-normalised; its name carries the weights' checksum so
the manifest and the export say exactly what was used.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from mater_tf.errors import UserError

VGGM_INPUT = 96


def load_keras_model(path, kind: str, fix: str):
    """`keras.models.load_model(path, compile=False)`, a bad file refused in one line:
    "PATH: not a loadable KIND (why); FIX"."""
    import keras

    if Path(path).suffix.lower() not in (".keras", ".h5", ".hdf5"):  # Keras' own paragraph says no more
        raise UserError(f"{path}: not a loadable {kind} (Keras reads .keras and .h5 files); {fix}")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - Keras raises many kinds for a bad file
        raise UserError(f"{path}: not a loadable {kind} ({error}); {fix}") from None


def file_checksum(path: str | Path) -> str:
    """sha256 of a file, or of every file in a folder (sorted by name)."""
    path = Path(path)
    if not path.is_dir():
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    digest = hashlib.sha256()  # a folder: its files' bytes one after another, by name
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _require_file(path: str, what: str) -> Path:
    if not Path(path).exists() and not Path(f"{path}.index").exists():  # a TF1 checkpoint prefix
        raise UserError(f"{what} weights '{path}' not found; give the path of the file")
    return Path(path)


_COMPILING = threading.Lock()


class _CompiledOnFirstUse:
    """`compiled()`: the subclass's `_compile()` result, built on first use, once even when
    several threads (prepare's extraction) ask at the same moment."""

    _compiled = None

    def compiled(self):
        if self._compiled is None:
            with _COMPILING:
                if self._compiled is None:
                    self._compiled = self._compile()
        return self._compiled


class FaceEmbedder(_CompiledOnFirstUse):
    """Embeds face crops: `embed(crops uint8 [n, H, W, 3]) -> float32 [n, D]` (not normalised)."""

    def __init__(self, model, name: str, checksum: str, grey: bool = False, scale: str = "raw"):
        self.model = model
        self.name = name
        self.checksum = checksum
        self.grey = grey
        self.scale = scale
        self.input_size = tuple(model.input_shape[1:3]) if model.input_shape[1] else (VGGM_INPUT, VGGM_INPUT)
        self.dim = int(model.output_shape[-1])

    def embed(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self.compiled()(np.asarray(crops, np.uint8)), np.float32)

    def _compile(self):
        """Preprocessing and model as one graph (one trace for any number and size of crops):
        the same ops as calling the model eagerly, without the per-layer Python cost."""
        import tensorflow as tf

        @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.uint8)])
        def embed(crops):
            images = tf.image.resize(tf.cast(crops, tf.float32), self.input_size)
            if self.grey:
                images = tf.image.rgb_to_grayscale(images)
            if self.scale == "symmetric":
                images = images / 127.5 - 1.0
            return self.model(images, training=False)

        return embed


def default_feature_layer(model):
    """The last feature map (4-D output) that is not the classifier's own output size."""
    classes = model.output_shape[-1]
    for layer in reversed(model.layers):
        shape = layer.output.shape
        if len(shape) == 4 and shape[-1] != classes:
            return layer
    return model.layers[-2]


def _feature_model(model, layer_name):
    import keras

    layer = model.get_layer(layer_name) if layer_name else default_feature_layer(model)
    output = layer.output
    if len(output.shape) == 4:
        output = keras.layers.GlobalAveragePooling2D(name="spatial_mean")(output)
    return keras.Model(model.inputs, output, name=f"{model.name}_{layer.name}")


VGGM_MODEL_NAME = "vggm_face"  # `mater_tf.features.vggm.convert_vggm`'s model
_VGGM_FILES = "give vgg-m-face-bn-fer.mat or the .keras file mater-tf weights convert-vggm makes of it"


def _checked(embedder, spec: str):
    """The embedder, once it has embedded a blank input: a model that loads but cannot embed is
    refused now, in one line, not by a traceback in the middle of a run."""
    blank = (
        np.zeros((1, VGGM_INPUT, VGGM_INPUT, 3), np.uint8)
        if isinstance(embedder, FaceEmbedder)
        else np.zeros((1, 96, 64), np.float32)
    )
    try:
        embedder.embed(blank)
    except Exception as error:  # noqa: BLE001 - Keras and TensorFlow raise many kinds
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        option = "--face-embedder" if isinstance(embedder, FaceEmbedder) else "--audio-embedder"
        raise UserError(
            f"{option} {spec}: the model loads but cannot embed a blank input ({first}); give a model "
            "of that kind"
        ) from None
    return embedder


def resolved_spec(spec: str | None) -> str | None:
    """The spec with its file's path made absolute, as the manifest and the export record it, so a
    command run from another folder (predict) finds the same file; `logmel` and TF-Hub handles as given."""
    import os

    kind, _, rest = (spec or "").partition(":")
    if kind not in ("vggm", "keras", "vggish") or not rest:
        return spec
    if kind == "vggish":
        from mater_tf.features.vggish import is_hub_handle

        if is_hub_handle(rest):
            return spec
        return f"{kind}:{os.path.abspath(rest)}"
    path, colon, layer = rest.partition(":") if kind == "keras" else (rest, "", "")
    return f"{kind}:{os.path.abspath(path)}{colon}{layer}"


def face_embedder(spec: str) -> FaceEmbedder:
    """Builds the face embedder of a `--face-embedder` spec."""

    kind, _, rest = spec.partition(":")
    if kind == "vggm" and rest:
        path = _require_file(rest, "VGG-M")
        if path.suffix == ".mat":
            from mater_tf.features.vggm import convert_vggm

            model = convert_vggm(path)
        else:
            model = load_keras_model(path, "VGG-M model", _VGGM_FILES)
            if model.name != VGGM_MODEL_NAME:  # the name mater-tf weights convert-vggm gives it
                raise UserError(
                    f"{path}: a Keras model named '{model.name}', not a VGG-M from mater-tf weights "
                    f"convert-vggm; {_VGGM_FILES}, or pass any other Keras face model as keras:{path}"
                )
        checksum = file_checksum(path)
        return _checked(FaceEmbedder(model, f"vggm-relu5-mean:{checksum[:12]}", checksum), spec)
    if kind == "keras" and rest:
        path_text, _, layer_name = rest.partition(":")
        path = _require_file(path_text, "Keras face model")
        model = load_keras_model(path, "Keras model", "give a .keras or .h5 model file")
        try:
            features = _feature_model(model, layer_name or None)
        except ValueError:
            names = ", ".join(layer.name for layer in model.layers[-6:])
            raise UserError(f"{path}: no layer '{layer_name}' (last layers: {names})") from None
        checksum = file_checksum(path)
        grey = model.input_shape[-1] == 1
        layer = layer_name or default_feature_layer(model).name
        return _checked(
            FaceEmbedder(features, f"keras-{path.stem}-{layer}:{checksum[:12]}", checksum, grey, "symmetric"),
            spec,
        )
    raise UserError(f"--face-embedder '{spec}' is not vggm:PATH or keras:PATH[:LAYER]")


class AudioEmbedder(_CompiledOnFirstUse):
    """Embeds windows of log-mel frames: `embed(patches [n, frames, 64]) -> [n, D]` (not normalised)."""

    def __init__(self, name: str, checksum: str, model=None):
        self.name = name
        self.checksum = checksum
        self.model = model
        self.dim = 512 if model is not None else 128

    def embed(self, patches: np.ndarray) -> np.ndarray:
        patches = np.asarray(patches, np.float32)
        if len(patches) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self.model is None:
            return np.concatenate([patches.mean(axis=1), patches.std(axis=1)], axis=-1)
        return np.asarray(self.compiled()(patches), np.float32)

    def _compile(self):
        """The conv stack and the spatial mean as one graph, traced once for any window count and
        length: a clip's windows in one call, without Keras' per-layer eager cost."""
        import tensorflow as tf

        @tf.function(input_signature=[tf.TensorSpec((None, None, 64), tf.float32)])
        def embed(patches):
            return tf.reduce_mean(self.model(patches, training=False), axis=(1, 2))

        return embed


def audio_embedder(spec: str) -> AudioEmbedder:
    """Builds the audio embedder of an `--audio-embedder` spec."""
    if spec == "logmel":
        return AudioEmbedder("logmel-mean-std-v1", "")
    kind, _, rest = spec.partition(":")
    if kind == "vggish" and rest:
        from mater_tf.features.vggish import (
            build_vggish,
            is_hub_handle,
            load_vggish_weights,
            resolve_hub_handle,
        )

        path = Path(resolve_hub_handle(rest)) if is_hub_handle(rest) else _require_file(rest, "VGGish")
        model = build_vggish("conv4_2", trainable=False)
        if str(path).endswith(".weights.h5"):
            try:
                model.load_weights(path)
            except Exception as error:  # noqa: BLE001 - h5py and Keras raise many kinds
                raise UserError(
                    f"{path}: not VGGish weights ({error}); give the .weights.h5 that mater-tf weights "
                    "convert-vggish makes, a VGGish checkpoint or a TF-Hub VGGish folder"
                ) from None
        else:
            load_vggish_weights(model, path)
        checksum = file_checksum(path if path.exists() else Path(f"{path}.index"))
        return _checked(AudioEmbedder(f"vggish-conv4_2-mean:{checksum[:12]}", checksum, model), spec)
    raise UserError(f"--audio-embedder '{spec}' is not vggish:PATH, vggish:TF_HUB_HANDLE or logmel")
