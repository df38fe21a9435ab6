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


def test_bad_embedder_specs(tmp_path):
    with pytest.raises(UserError, match="not vggm:PATH or keras:PATH"):
        face_embedder("resnet")
    with pytest.raises(UserError, match="weights '.*missing.mat' not found"):
        face_embedder(f"vggm:{tmp_path / 'missing.mat'}")
    with pytest.raises(UserError, match="not vggish:PATH or logmel"):
        audio_embedder("wav2vec")
    logmel = audio_embedder("logmel")
    patches = np.random.default_rng(0).normal(size=(3, 50, 64)).astype(np.float32)
    out = logmel.embed(patches)
    np.testing.assert_allclose(out[:, :64], patches.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(out[:, 64:], patches.std(axis=1), rtol=1e-5)
