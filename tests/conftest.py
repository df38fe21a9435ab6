"""Test setup: the TensorFlow environment first, then shared fixtures."""

import os

# Before TensorFlow runs an op (see ../shared/STACK.md: oneDNN crash on this CPU).
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"

# Tiny sizes keep the default run fast (dim 8, 2 layers, 4 windows, batch 8).
TINY_OVERRIDES = [
    "data.synthetic.num_subjects=6",
    "data.synthetic.clips_per_subject=12",
    "data.synthetic.num_windows=4",
    "data.synthetic.min_valid_windows=3",
    "data.synthetic.evidence_windows=1",
    "data.synthetic.audio_dim=8",
    "data.synthetic.face_dim=6",
    "data.synthetic.signal_strength=3.0",
    "model.num_layers=2",
    "model.d_model=8",
    "model.num_heads=2",
    "model.ff_dim=16",
    "model.head_hidden_dim=8",
    "train.batch_size=8",
    "train.epochs=2",
    "train.learning_rate=0.01",
    "cv.num_folds=3",
]


@pytest.fixture(scope="session")
def tiny_overrides():
    return tuple(TINY_OVERRIDES)


@pytest.fixture(scope="session")
def cli_command():
    """`cli_command("train", workdir, "r", overrides)` -> the argv of `mater-tf train --workdir ... --set ...`."""

    def command(verb, workdir, run, overrides=()):
        return [verb, "--workdir", str(workdir), "--run", run] + [a for o in overrides for a in ("--set", o)]

    return command


@pytest.fixture(scope="session")
def fit_in():
    """`fit_in(config, root, export=False)` -> (metrics, run): trains one run into the folder `root`
    as `mater-tf train` does (config written, records resolved, the config's split)."""
    from mater_tf.training import experiment_data, rundir, trainer

    def fit(config, root, export=False):
        run = rundir.RunDir(root)
        rundir.write_config(config, run)
        records_path = experiment_data.resolve_records(config, root / "data")
        index = experiment_data.index_for(config, records_path)
        split = experiment_data.make_split(config, index)
        return trainer.fit_run(config, run, records_path, index, split, export=export), run

    return fit


@pytest.fixture
def tiny_config():
    from mater_tf.config import load_config

    return load_config("quickstart", TINY_OVERRIDES)


@pytest.fixture
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip(f"shared test data not found at {SHARED} (it sits beside the checkout)")
    return SHARED


@pytest.fixture(scope="module")
def shared_dir_module():
    if not SHARED.is_dir():
        pytest.skip(f"shared test data not found at {SHARED} (it sits beside the checkout)")
    return SHARED


@pytest.fixture
def ravdess_speech(shared_dir):
    """Path of a RAVDESS speech sample by file name, e.g. "03-01-01-01-01-01-01.wav"."""

    def path(name):
        return shared_dir / "data" / "RAVDESS" / "Audio_Speech_Actors_01-24" / f"Actor_{name[-6:-4]}" / name

    return path


@pytest.fixture
def write_tf1_checkpoint(tmp_path):
    """Writes {variable name: array} as a TF1 checkpoint (the format of vggish_model.ckpt); returns its path."""
    import tensorflow as tf

    def write(values, name="vggish_model.ckpt"):
        path = str(tmp_path / name)
        with tf.Graph().as_default():
            for variable, value in values.items():
                tf.compat.v1.Variable(value, name=variable)
            saver = tf.compat.v1.train.Saver()
            with tf.compat.v1.Session() as session:
                session.run(tf.compat.v1.global_variables_initializer())
                saver.save(session, path, write_meta_graph=False)
        return path

    return write


@pytest.fixture
def phone_recording(ravdess_speech, tmp_path):
    """`write(path)`: a real RAVDESS utterance (3.87 s) as a phone records it: AAC in MP4 (.m4a,
    FFmpeg's ipod muxer), 44.1 kHz stereo. Returns the path and the source's length in seconds."""

    def write(path=None):
        import av

        source = ravdess_speech("03-01-05-01-01-01-01.wav")
        path = Path(path or tmp_path / "voice memo.m4a")
        with av.open(str(source)) as reader, av.open(str(path), "w", format="ipod") as writer:
            audio = writer.add_stream("aac", rate=44100)
            audio.layout = "stereo"
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=44100)
            for frame in reader.decode(audio=0):
                for piece in resampler.resample(frame):
                    writer.mux(audio.encode(piece))
            for piece in resampler.resample(None):
                writer.mux(audio.encode(piece))
            writer.mux(audio.encode(None))
        with av.open(str(source)) as reader:
            seconds = reader.duration / 1e6
        return path, seconds

    return write
