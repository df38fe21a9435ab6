"""The VGGish front end and network against the reference outputs in ../shared/golden/."""

import numpy as np
import pytest
import tensorflow as tf

from mater_tf.errors import UserError
from mater_tf.features import log_mel
from mater_tf.features.vggish import build_vggish, load_vggish_weights

VARIABLES = [
    ("vggish/conv1/weights", (3, 3, 1, 64)),
    ("vggish/conv1/biases", (64,)),
    ("vggish/conv2/weights", (3, 3, 64, 128)),
    ("vggish/conv2/biases", (128,)),
    ("vggish/conv3/conv3_1/weights", (3, 3, 128, 256)),
    ("vggish/conv3/conv3_1/biases", (256,)),
    ("vggish/conv3/conv3_2/weights", (3, 3, 256, 256)),
    ("vggish/conv3/conv3_2/biases", (256,)),
    ("vggish/conv4/conv4_1/weights", (3, 3, 256, 512)),
    ("vggish/conv4/conv4_1/biases", (512,)),
    ("vggish/conv4/conv4_2/weights", (3, 3, 512, 512)),
    ("vggish/conv4/conv4_2/biases", (512,)),
    ("vggish/fc1/fc1_1/weights", (12288, 4096)),
    ("vggish/fc1/fc1_1/biases", (4096,)),
    ("vggish/fc1/fc1_2/weights", (4096, 4096)),
    ("vggish/fc1/fc1_2/biases", (4096,)),
    ("vggish/fc2/weights", (4096, 128)),
    ("vggish/fc2/biases", (128,)),
]


@pytest.fixture(scope="module")
def golden(shared_dir_module):
    return dict(np.load(shared_dir_module / "golden" / "vggish_reference.npz"))


@pytest.fixture(scope="module")
def reference_weights(golden):
    """The seeded weights, drawn exactly as ../shared/golden/README.md says."""
    rng = np.random.default_rng(int(golden["seed"]))
    weights = {}
    for name, shape in VARIABLES:
        value = rng.standard_normal(shape, dtype=np.float32)
        if name.endswith("/weights"):
            value *= np.float32(np.sqrt(2 / np.prod(shape[:-1])))
        else:
            value *= np.float32(0.1)
        weights[name] = value
    for name, _ in VARIABLES:
        assert weights[name].sum() == pytest.approx(
            float(golden[f"weights_check/{name}/sum"]), rel=1e-4, abs=1e-3
        )
        np.testing.assert_allclose(
            weights[name].ravel()[:5], golden[f"weights_check/{name}/first5"], rtol=1e-6
        )
    return weights


@pytest.mark.parametrize("index", [0, 1, 2])
def test_log_mel_matches_the_reference(golden, index):
    waveform = golden[f"frontend{index}/waveform_16k"]
    reference = golden[f"frontend{index}/log_mel"]
    eager = log_mel(waveform).numpy()
    assert eager.shape == reference.shape
    np.testing.assert_allclose(eager, reference, atol=1e-4, rtol=1e-5)
    mapped = next(iter(tf.data.Dataset.from_tensors(waveform).map(log_mel))).numpy()
    np.testing.assert_allclose(mapped, reference, atol=1e-4, rtol=1e-5)


def test_log_mel_edge_cases():
    assert log_mel(np.zeros(399, np.float32)).shape == (0, 64)
    assert log_mel(np.zeros(400 + 160 * 9, np.float32)).shape == (10, 64)
    np.testing.assert_allclose(log_mel(np.zeros(1600, np.float32)).numpy(), np.log(0.01), rtol=1e-6)
    with pytest.raises(ValueError, match="16000 Hz"):
        log_mel(np.zeros(1600, np.float32), sample_rate=48000)


@pytest.mark.slow
@pytest.mark.parametrize("frames", [24, 25, 48, 50, 96])
def test_conv_stack_matches_the_reference(golden, reference_weights, frames):
    patches = golden[f"network/patches_{frames}"]
    conv = load_vggish_weights(build_vggish("conv4_2"), reference_weights)
    np.testing.assert_allclose(
        conv(patches).numpy(), golden[f"network/conv4_2_{frames}"], rtol=1e-4, atol=1e-4
    )
    pool = load_vggish_weights(build_vggish("pool4"), reference_weights)
    np.testing.assert_allclose(pool(patches).numpy(), golden[f"network/pool4_{frames}"], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_checkpoint_round_trip_gives_the_reference_embedding(
    golden, reference_weights, tmp_path, write_tf1_checkpoint
):
    path = write_tf1_checkpoint(reference_weights)
    model = load_vggish_weights(build_vggish("embedding"), path)
    embedding = model(golden["network/patches_96"]).numpy()
    np.testing.assert_allclose(embedding, golden["network/embedding_96"], rtol=1e-3, atol=1e-3)
    # `mater-tf weights convert-vggish` turns the checkpoint into a Keras weights file once.
    from mater_tf.cli.main import main
    from mater_tf.features.embedders import audio_embedder

    out = tmp_path / "vggish.weights.h5"
    assert main(["weights", "convert-vggish", "--from", path, "--out", str(out)]) == 0
    embedder = audio_embedder(f"vggish:{out}")
    patches = golden["network/patches_50"]
    expected = golden["network/conv4_2_50"].mean(axis=(1, 2))
    np.testing.assert_allclose(embedder.embed(patches), expected, rtol=1e-4, atol=1e-4)


def test_saved_model_variables_are_read_by_name(reference_weights, tmp_path):
    # TF-Hub's TF2 SavedModels list their variables in `.variables` (Reusable SavedModel API).
    exported = tf.__internal__.tracking.AutoTrackable()
    exported.variables = [
        tf.Variable(value, name=name) for name, value in reference_weights.items() if "/fc" not in name
    ]
    tf.saved_model.save(exported, str(tmp_path / "hub"))
    model = load_vggish_weights(build_vggish("conv4_2"), tmp_path / "hub")
    np.testing.assert_array_equal(
        model.get_layer("conv3_2").get_weights()[0], reference_weights["vggish/conv3/conv3_2/weights"]
    )


def test_wrong_layouts_are_named(reference_weights, tmp_path):
    broken = dict(reference_weights)
    broken["vggish/conv2/weights"] = np.zeros((3, 3, 64, 64), np.float32)
    with pytest.raises(UserError, match=r"vggish/conv2/weights has shape \(3, 3, 64, 64\)"):
        load_vggish_weights(build_vggish("conv4_2"), broken)
    del broken["vggish/conv2/weights"]
    with pytest.raises(UserError, match="lack vggish/conv2"):
        load_vggish_weights(build_vggish("conv4_2"), broken)
    with pytest.raises(UserError, match="not a VGGish checkpoint"):
        load_vggish_weights(build_vggish("conv4_2"), tmp_path / "nothing")


def write_hub_vggish(weights, folder):
    """A SavedModel laid out as TF-Hub's VGGish (tensorflow/models vggish_export_tfhub.py): a tf.Module
    holding its variables under the checkpoint names, called on a 16 kHz waveform. Only the conv
    variables are written (the fc ones would make it 200 MB; the conv4_2 embedder does not use them)."""

    class VGGish(tf.Module):
        def __init__(self):
            super().__init__()
            self._variables = [
                tf.Variable(value, name=name) for name, value in weights.items() if "/fc" not in name
            ]

        @tf.function(input_signature=(tf.TensorSpec(shape=[None], dtype=tf.float32),))
        def __call__(self, waveform):
            return tf.reduce_mean(waveform) * tf.reduce_sum(self._variables[1])[None, None]

    tf.saved_model.save(VGGish(), str(folder))
    return folder


@pytest.mark.slow
def test_vggish_from_a_tf_hub_folder_and_handle(golden, reference_weights, tmp_path, monkeypatch):
    import functools
    import http.server
    import tarfile
    import threading

    from mater_tf.features.embedders import audio_embedder

    folder = write_hub_vggish(reference_weights, tmp_path / "vggish_1")
    patches, expected = golden["network/patches_50"], golden["network/conv4_2_50"].mean(axis=(1, 2))
    from_folder = audio_embedder(f"vggish:{folder}")
    np.testing.assert_allclose(from_folder.embed(patches), expected, rtol=1e-4, atol=1e-4)

    # A handle (URL) goes through tensorflow_hub: downloaded once into TFHUB_CACHE_DIR, then read from there.
    with tarfile.open(tmp_path / "vggish.tar.gz", "w:gz") as archive:
        for item in folder.iterdir():
            archive.add(item, arcname=item.name)
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    handle = f"http://127.0.0.1:{server.server_address[1]}/vggish.tar.gz"
    try:
        first = audio_embedder(f"vggish:{handle}")
        second = audio_embedder(f"vggish:{handle}")
    finally:
        server.shutdown()
    assert len(requests) == 1 and requests[0].startswith("/vggish.tar.gz")  # the second came from the cache
    assert any((tmp_path / "cache").iterdir())
    np.testing.assert_allclose(second.embed(patches), expected, rtol=1e-4, atol=1e-4)
    assert first.checksum == second.checksum == from_folder.checksum  # the same files, wherever they lie
    with pytest.raises(UserError, match="cannot fetch the TF-Hub model http://127.0.0.1:1/none.tar.gz"):
        audio_embedder("vggish:http://127.0.0.1:1/none.tar.gz")
