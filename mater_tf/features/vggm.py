"""VGG-M face network (MatConvNet `vgg-m-face-bn-fer`) in Keras, converted from its .mat file.

The released model (Albanie & Vedaldi, "Learning grimaces by watching TV",
BMVC 2016) was trained on FER2013 (7 expressions); the MATER paper says FER+.
Its DagNN layers: conv1 7x7/2 96, BN, ReLU, pool 3x3/2; conv2 5x5/2 256 pad 1,
BN, ReLU, pool 3x3/2 with MatConvNet's [0 1 0 1] padding (rounding up);
conv3-5 3x3 512 pad 1, BN, ReLU; pool5; then fc6-fc8. Inputs are RGB 0-255
minus the average image. At 96x96 input relu5 is 5x5x512; its spatial mean
is the paper's 512-d face embedding.

The converter walks the DagNN layers in file order and stops at the layer it
is asked for, so the full released file and a truncated one convert alike.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from mater_tf.errors import UserError

SUPPORTED = ("dagnn.Conv", "dagnn.BatchNorm", "dagnn.ReLU", "dagnn.Pooling")


def _text(value) -> str:
    return str(np.asarray(value).ravel()[0])


def _block(layer) -> dict:
    block = layer["block"]
    block = block[0, 0] if block.size else None
    if block is None or block.dtype.names is None:
        return {}
    return {name: np.asarray(block[name]).ravel() for name in block.dtype.names}


def read_matconvnet(path: str | Path) -> tuple[list, dict, dict]:
    """(layers, params by name, meta) of a MatConvNet DagNN .mat file."""
    try:
        from scipy.io import loadmat
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError("reading .mat files needs scipy: pip install 'mater-tf[media]'") from error
    try:
        mat = loadmat(str(path), squeeze_me=False)
    except Exception as error:  # noqa: BLE001 - scipy raises many kinds for a bad file
        raise UserError(
            f"{path}: not a readable MatConvNet .mat file ({error}); give the vgg-m-face-bn-fer .mat"
        ) from None
    if "layers" not in mat or "params" not in mat:
        source = mat.get("net")
        if source is None:
            raise UserError(
                f"{path}: no 'layers'/'params' (not a MatConvNet DagNN file); give the vgg-m-face-bn-fer .mat"
            )
        mat = {name: source[0, 0][name] for name in source.dtype.names}
    layers = []
    for index in range(mat["layers"].shape[1]):
        layer = mat["layers"][0, index]
        params = [_text(p) for p in np.asarray(layer["params"]).ravel()]
        layers.append(
            {
                "name": _text(layer["name"]),
                "type": _text(layer["type"]),
                "params": params,
                "block": _block(layer),
            }
        )
    params = {}
    for index in range(mat["params"].shape[1]):
        param = mat["params"][0, index]
        params[_text(param["name"])] = np.asarray(param["value"], dtype=np.float32)
    meta = {}
    if "meta" in mat:
        normalization = mat["meta"][0, 0]["normalization"][0, 0]
        meta["average_image"] = np.asarray(normalization["averageImage"], np.float32).ravel()[:3]
    return layers, params, meta


def convert_vggm(path: str | Path, stop_at: str = "relu5", embedding: bool = True) -> keras.Model:
    """Builds the Keras VGG-M from a .mat file, up to and including `stop_at`.

    Args:
        path: the MatConvNet file (`vgg-m-face-bn-fer.mat`).
        stop_at: the last DagNN layer to convert (paper: relu5, the conv5 output).
        embedding: append the spatial mean, giving [batch, 512].

    Returns:
        A model on RGB 0-255 images [batch, H, W, 3] (the average image is
        subtracted inside), named "vggm_face".

    Raises:
        UserError: when the file is not of this layout, naming what is wrong.
    """
    layers, params, meta = read_matconvnet(path)
    names = [layer["name"] for layer in layers]
    if stop_at not in names:
        raise UserError(f"{path}: has no layer '{stop_at}' (layers: {', '.join(names)})")
    if "average_image" not in meta:
        raise UserError(f"{path}: no meta.normalization.averageImage; not a vgg-m-face-bn-fer file")
    image = keras.Input((None, None, 3), name="rgb")
    x = keras.layers.Rescaling(1.0, offset=[-float(v) for v in meta["average_image"]], name="subtract_mean")(
        image
    )
    weights = {}
    for layer in layers:
        kind, name, block = layer["type"], layer["name"], layer["block"]
        if kind not in SUPPORTED:
            raise UserError(
                f"{path}: layer {name} is {kind}; the converter handles {SUPPORTED} up to {stop_at}"
            )
        if kind == "dagnn.Conv":
            kernel = params[layer["params"][0]]
            bias = params[layer["params"][1]].ravel()
            height, width, _, filters = (int(v) for v in block["size"])
            if kernel.shape[:2] != (height, width) or kernel.shape[3] != filters:
                raise UserError(
                    f"{path}: {name} weights {kernel.shape} do not match its size {block['size']}"
                )
            x = _pad(x, block["pad"], name)
            conv = keras.layers.Conv2D(
                filters, (height, width), strides=tuple(int(s) for s in block["stride"]), name=name
            )
            x = conv(x)
            weights[name] = [kernel, bias]
        elif kind == "dagnn.BatchNorm":
            gamma, beta, moments = (params[p] for p in layer["params"])
            # MatConvNet keeps (mean, sigma) with sigma = sqrt(var + eps) already; Keras
            # adds its epsilon back, so the variance stored is sigma^2 - eps.
            epsilon = float(block.get("epsilon", [1e-5])[0])
            variance = np.maximum(moments[:, 1] ** 2 - epsilon, 0.0)
            x = keras.layers.BatchNormalization(epsilon=epsilon, name=name)(x)
            weights[name] = [gamma.ravel(), beta.ravel(), moments[:, 0], variance]
        elif kind == "dagnn.ReLU":
            x = keras.layers.ReLU(name=name)(x)
        elif kind == "dagnn.Pooling":
            if _text(block["method"]) != "max":
                raise UserError(
                    f"{path}: {name} is {_text(block['method'])} pooling; only max pooling is handled"
                )
            # Pooling follows a ReLU, so zero padding equals MatConvNet's -inf padding.
            x = _pad(x, block["pad"], name)
            size = tuple(int(s) for s in block["poolSize"])
            x = keras.layers.MaxPooling2D(size, strides=tuple(int(s) for s in block["stride"]), name=name)(x)
        if name == stop_at:
            break
    if embedding:
        x = keras.layers.GlobalAveragePooling2D(name="spatial_mean")(x)
    model = keras.Model(image, x, name="vggm_face")
    for name, values in weights.items():
        model.get_layer(name).set_weights(values)
    return model


def _pad(x, pad, name):
    top, bottom, left, right = (int(v) for v in pad)
    if top or bottom or left or right:
        x = keras.layers.ZeroPadding2D(((top, bottom), (left, right)), name=f"{name}_pad")(x)
    return x
