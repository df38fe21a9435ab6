"""VGG-M converted from the MatConvNet layout, and the generic Keras face embedder."""

import keras
import numpy as np
import pytest

from mater_tf.cli.main import main
from mater_tf.errors import UserError
from mater_tf.features.embedders import audio_embedder, face_embedder
from mater_tf.features.vggm import convert_vggm


@pytest.fixture(scope="module")
def golden(shared_dir_module):
    return dict(np.load(shared_dir_module / "golden" / "vggm_reference.npz")), shared_dir_module / "golden"


@pytest.mark.parametrize("size", [96, 224])
def test_vggm_matches_the_reference(golden, size):
    reference, folder = golden
    mat = folder / "vgg-m-face-bn-fer-seeded-conv.mat"
    crops = reference[f"crops{size}"].astype(np.float32)
    relu5 = convert_vggm(mat, "relu5", embedding=False)(crops).numpy()
    np.testing.assert_allclose(relu5, reference[f"relu5_{size}"], rtol=1e-4, atol=1e-3)
    pool5 = convert_vggm(mat, "pool5", embedding=False)(crops).numpy()
    np.testing.assert_allclose(pool5, reference[f"pool5_{size}"], rtol=1e-4, atol=1e-3)
    embedding = convert_vggm(mat)(crops).numpy()
    np.testing.assert_allclose(embedding, reference[f"relu5_{size}"].mean(axis=(1, 2)), rtol=1e-4, atol=1e-4)


def test_vggm_bad_files(golden, tmp_path):
    _, folder = golden
    with pytest.raises(UserError, match="has no layer 'fc7'"):
        convert_vggm(folder / "vgg-m-face-bn-fer-seeded-conv.mat", "fc7")
    (tmp_path / "x.mat").write_bytes(b"not a mat file")
    with pytest.raises(UserError, match=r"x\.mat: not a readable MatConvNet"):
        convert_vggm(tmp_path / "x.mat")


def test_convert_vggm_command_writes_a_model_that_reloads(golden, tmp_path, capsys):
    reference, folder = golden
    out = tmp_path / "vggm.keras"
    assert (
        main(
            [
                "weights",
                "convert-vggm",
                "--from",
                str(folder / "vgg-m-face-bn-fer-seeded-conv.mat"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    reloaded = keras.models.load_model(out)
    expected = reference["relu5_96"].mean(axis=(1, 2))
    np.testing.assert_allclose(
        reloaded(reference["crops96"].astype(np.float32)).numpy(), expected, rtol=1e-4, atol=1e-4
    )
    embedder = face_embedder(f"vggm:{out}")
    assert embedder.dim == 512 and embedder.input_size == (96, 96)
    assert main(["weights", "convert-vggm", "--from", str(tmp_path / "none.mat"), "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err


def test_keras_embedder_with_the_real_fer_network(shared_dir, golden):
    reference, _ = golden
    embedder = face_embedder(f"keras:{shared_dir / 'weights' / 'fer2013_mini_xception.hdf5'}")
    assert embedder.grey and embedder.input_size == (64, 64)
    assert embedder.name.startswith("keras-fer2013_mini_xception-add_4:")  # last feature map, 128 channels
    embeddings = embedder.embed(reference["crops96"])
    assert embeddings.shape == (4, 128)
    assert np.isfinite(embeddings).all() and np.abs(embeddings).sum(axis=1).min() > 0
    assert not np.allclose(embeddings[0], embeddings[2])
    named = face_embedder(f"keras:{shared_dir / 'weights' / 'fer2013_mini_xception.hdf5'}:predictions")
    assert named.dim == 7
    with pytest.raises(UserError, match="no layer 'nope'"):
        face_embedder(f"keras:{shared_dir / 'weights' / 'fer2013_mini_xception.hdf5'}:nope")


def test_relative_embedder_paths_are_recorded_resolved(shared_dir, golden, monkeypatch):
    """predict, run from another folder, reads the spec the records name: it must lead to the same file."""
    from mater_tf.data.extraction import build_extractor

    monkeypatch.chdir(shared_dir)
    mat = golden[1] / "vgg-m-face-bn-fer-seeded-conv.mat"
    for typed, resolved in (
        (
            "keras:weights/fer2013_mini_xception.hdf5:add_4",
            f"keras:{shared_dir}/weights/fer2013_mini_xception.hdf5:add_4",
        ),
        ("vggm:golden/vgg-m-face-bn-fer-seeded-conv.mat", f"vggm:{mat}"),
    ):
        _, info = build_extractor(4, 0.5, ["audio", "face"], typed, "logmel")
        assert info["face"]["spec"] == resolved and info["audio"]["spec"] == "logmel"
    monkeypatch.chdir("/")
    assert face_embedder(info["face"]["spec"]).dim == 512  # found from anywhere


def test_bad_embedder_specs(tmp_path):
    with pytest.raises(UserError, match="not vggm:PATH or keras:PATH"):
        face_embedder("resnet")
    with pytest.raises(UserError, match="weights '.*missing.mat' not found"):
        face_embedder(f"vggm:{tmp_path / 'missing.mat'}")
    with pytest.raises(UserError, match="not vggish:PATH, vggish:TF_HUB_HANDLE or logmel"):
        audio_embedder("wav2vec")
    logmel = audio_embedder("logmel")
    patches = np.random.default_rng(0).normal(size=(3, 50, 64)).astype(np.float32)
    out = logmel.embed(patches)
    np.testing.assert_allclose(out[:, :64], patches.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(out[:, 64:], patches.std(axis=1), rtol=1e-5)


def _with_released_tail(source, target):
    """Writes `source` (DagNN layout, stops at pool5) plus an fc6 conv and a softmax,
    as the released vgg-m-face-bn-fer goes on past pool5 (fc6 kept small here)."""
    from scipy.io import loadmat, savemat

    mat = loadmat(str(source), squeeze_me=False)
    layers, params = mat["layers"], mat["params"]
    conv5 = next(layers[0, i] for i in range(layers.shape[1]) if layers[0, i]["name"][0] == "conv5")
    grown = np.zeros((1, layers.shape[1] + 2), dtype=layers.dtype)
    grown[0, : layers.shape[1]] = layers[0]
    fc6 = conv5.copy()
    fc6["name"], fc6["inputs"], fc6["outputs"] = np.array(["fc6"]), np.array(["x18"]), np.array(["x19"])
    block = fc6["block"].copy()
    block[0, 0]["size"] = np.array([[1.0, 1.0, 512.0, 8.0]])
    block[0, 0]["pad"] = np.zeros((1, 4))
    fc6["block"] = block
    params_names = np.empty((1, 2), dtype=object)
    params_names[0, 0], params_names[0, 1] = np.array(["fc6f"]), np.array(["fc6b"])
    fc6["params"] = params_names
    grown[0, -2] = fc6
    softmax = conv5.copy()
    softmax["name"], softmax["type"], softmax["params"] = (
        np.array(["prob"]),
        np.array(["dagnn.SoftMax"]),
        np.empty((1, 0), object),
    )
    grown[0, -1] = softmax
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(1, 1, 512, 8)).astype(np.float32)
    bias = rng.normal(size=(8, 1)).astype(np.float32)
    more = np.zeros((1, params.shape[1] + 2), dtype=params.dtype)
    more[0, : params.shape[1]] = params[0]
    for offset, (name, value) in enumerate((("fc6f", kernel), ("fc6b", bias))):
        entry = params[0, 0].copy()
        entry["name"], entry["value"] = np.array([name]), value
        more[0, params.shape[1] + offset] = entry
    savemat(str(target), {"layers": grown, "params": more, "meta": mat["meta"]})
    return kernel[0, 0], bias[:, 0]


def test_converter_walks_a_written_file_in_order_and_stops_where_asked(golden, tmp_path):
    reference, folder = golden
    target = tmp_path / "vgg-m-face-bn-fer.mat"
    kernel, bias = _with_released_tail(folder / "vgg-m-face-bn-fer-seeded-conv.mat", target)
    crops = reference["crops96"].astype(np.float32)
    relu5 = convert_vggm(target, "relu5", embedding=False)(crops).numpy()
    np.testing.assert_allclose(relu5, reference["relu5_96"], rtol=1e-4, atol=1e-3)
    fc6 = convert_vggm(target, "fc6", embedding=False)(crops).numpy()
    expected = reference["pool5_96"] @ kernel + bias  # a 1x1 conv on pool5
    np.testing.assert_allclose(fc6, expected, rtol=1e-3, atol=1e-2)
    with pytest.raises(UserError, match="prob is dagnn.SoftMax"):
        convert_vggm(target, "prob")


@pytest.mark.parametrize(
    "name, spec",
    [
        ("mini_xception", "keras:{shared}/weights/fer2013_mini_xception.hdf5"),
        ("vggm_seeded", "vggm:{shared}/golden/vgg-m-face-bn-fer-seeded-conv.mat"),
    ],
)
def test_face_embeddings_are_those_of_the_code_before_issue_13(shared_dir_module, name, spec):
    # Crops are now cut from the uint8 frames and the face model runs as one tf.function; the
    # stored embeddings were computed by the old path (float32 frames, eager model) for the
    # same MTCNN boxes: see tests/data/make_face_embeddings_before_issue13.py.
    from pathlib import Path

    from mater_tf.faces import crop_faces
    from mater_tf.media import decode_video

    before = np.load(Path(__file__).resolve().parent / "data" / "face_embeddings_before_issue13.npz")
    video = decode_video(shared_dir_module / "data" / "CREMA-D" / "VideoFlash" / "1001_DFA_ANG_XX.flv", 640)
    assert video.frames.shape == tuple(before["frame_shape"])
    crops = crop_faces(video.frames[before["found"]], before["boxes"])
    embedder = face_embedder(spec.format(shared=shared_dir_module))
    embeddings = embedder.embed(crops)
    assert embeddings.shape == before[name].shape and np.abs(before[name]).max() > 0.1
    np.testing.assert_allclose(embeddings, before[name], rtol=1e-5, atol=1e-5)
    # Fewer crops than the first call (one tracing serves every batch size) give the same rows.
    np.testing.assert_allclose(embedder.embed(crops[:5]), before[name][:5], rtol=1e-5, atol=1e-5)


def test_crops_from_uint8_frames_equal_crops_from_float_frames():
    import tensorflow as tf

    from mater_tf.faces import crop_faces

    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, size=(3, 60, 80, 3), dtype=np.uint8)
    boxes = np.array([[10.3, 5.7, 30.2, 33.1], [40.0, 20.5, 25.0, 21.0], [0.0, 0.0, 79.0, 59.0]], np.float32)
    crops = crop_faces(frames, boxes, size=24)
    # By hand with the float path the old code took, and non-trivial interpolation.
    height, width = 60, 80
    centre_x, centre_y = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
    half = np.maximum(boxes[:, 2], boxes[:, 3]) * 1.15 / 2
    normalised = np.stack(
        [
            (centre_y - half) / (height - 1),
            (centre_x - half) / (width - 1),
            (centre_y + half) / (height - 1),
            (centre_x + half) / (width - 1),
        ],
        axis=1,
    ).astype(np.float32)
    expected = tf.image.crop_and_resize(frames.astype(np.float32), normalised, tf.range(3), (24, 24)).numpy()
    np.testing.assert_array_equal(crops, np.clip(np.round(expected), 0, 255).astype(np.uint8))
    assert crops.dtype == np.uint8 and len(np.unique(crops)) > 100
