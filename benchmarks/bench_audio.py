"""The audio path against the official VGGish reference code, same clips, same weights (figures, not tests).

    PYTHONPATH=. python benchmarks/bench_audio.py --reference-dir /path/to/models/research/audioset/vggish \\
        [--shared ../shared] [--rounds 5] [--json OUT.json]

The reference is tensorflow/models research/audioset/vggish, read from the
folder you name (it is not part of mater-tf): `vggish_input.wav_read`
(soundfile), channels averaged, `resampy.resample`, `mel_features`'
numpy log-mel, and the TF-Slim network (`vggish_slim`) in a TF1 session, one
clip per call, the way its `vggish_inference_demo.py` runs it. It needs
`pip install resampy tf_slim soundfile`.

Both sides embed every RAVDESS sample wav in ../shared/data (8 x 0.5 s
windows: each window's 48 log-mel frames from frame 50 t, the project's
windowing, applied to the reference's log-mel too) with VGGish conv4_2
averaged over space, l2-normalised. The weights are not the released ones
(they cannot be downloaded here): they are drawn by the procedure of
../shared/golden/README.md and written as a TF1 checkpoint under the real
variable names (vggish/conv1/weights, ...), which both sides load.

Each side runs each clip in turn (the sides alternate clip by clip, so a change
in the machine's load hits both alike) after one warm-up pass; per round, the
ratio of the two sides' wall times and of this process's CPU times; medians
over `--rounds`:

* front end: decode + resample + log-mel (ours: `mater_tf.media.decode_audio`
  and `mater_tf.features.log_mel`);
* `logmel` embedder: the front end plus per-window mean and std (the
  reference side: its front end and the same numpy statistics);
* `vggish:` embedder: the whole path, `ClipExtractor.extract` with
  `vggish:CHECKPOINT` against the reference's front end and network;
* `mater-tf prepare` (`pipelines.prepare.prepare`, 2 workers: decoding in
  the tf.data graph, records written) against the same reference figures.

Beside each ratio: the largest difference between the two sides' outputs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REFERENCE_MODULES = ("vggish_input", "vggish_slim", "vggish_params", "mel_features")
# The golden weights (../shared/golden/README.md): names and shapes in drawing order.
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


def fail(message: str) -> None:
    print(f"bench_audio: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_reference(folder: Path) -> dict:
    """The reference modules, imported from the user's folder; one line and exit 2 when that cannot work."""
    missing_files = [name for name in REFERENCE_MODULES if not (folder / f"{name}.py").is_file()]
    if missing_files:
        fail(
            f"--reference-dir {folder} lacks {', '.join(m + '.py' for m in missing_files)}: name the "
            "research/audioset/vggish folder of a tensorflow/models checkout"
        )
    missing = [p for p in ("resampy", "tf_slim", "soundfile") if importlib.util.find_spec(p) is None]
    if missing:
        fail(f"the reference code needs {', '.join(missing)}: pip install {' '.join(missing)}")
    sys.path.insert(0, str(folder))
    return {name: importlib.import_module(name) for name in REFERENCE_MODULES}


def golden_weights(golden: dict) -> dict:
    """The seeded weights, drawn exactly as ../shared/golden/README.md says (checked against it)."""
    rng = np.random.default_rng(int(golden["seed"]))
    weights = {}
    for name, shape in VARIABLES:
        value = rng.standard_normal(shape, dtype=np.float32)
        value *= (
            np.float32(np.sqrt(2 / np.prod(shape[:-1]))) if name.endswith("/weights") else np.float32(0.1)
        )
        np.testing.assert_allclose(value.ravel()[:5], golden[f"weights_check/{name}/first5"], rtol=1e-6)
        weights[name] = value
    return weights


def write_checkpoint(weights: dict, path: str) -> str:
    import tensorflow as tf

    with tf.Graph().as_default():
        for name, value in weights.items():
            tf.compat.v1.Variable(value, name=name)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, path, write_meta_graph=False)
    return path


def cut_windows(frames: np.ndarray, windowing) -> np.ndarray:
    """The project's windows (mater_tf.data.extraction) of a log-mel [frames, 64], silence past the end."""
    size = windowing.frames_per_window
    patches = np.full((windowing.num_windows, size, 64), np.log(0.01), np.float32)
    for window in range(windowing.num_windows):
        start = windowing.first_frame(window)
        piece = frames[start : start + size]
        patches[window, : len(piece)] = piece
    return patches


class Reference:
    """The official code, one clip per call."""

    def __init__(self, modules: dict, checkpoint: str, windowing):
        import tensorflow as tf

        self.modules, self.windowing = modules, windowing
        params = modules["vggish_params"]
        params.NUM_FRAMES = windowing.frames_per_window  # the slim net reshapes to [-1, NUM_FRAMES, 64]
        self.graph = tf.Graph()
        with self.graph.as_default():
            modules["vggish_slim"].define_vggish_slim(training=False)
            self.session = tf.compat.v1.Session(graph=self.graph)
            modules["vggish_slim"].load_vggish_slim_checkpoint(self.session, checkpoint)
        self.features = self.graph.get_tensor_by_name(params.INPUT_TENSOR_NAME)
        self.conv4_2 = self.graph.get_tensor_by_name("vggish/conv4/conv4_2/Relu:0")

    def front_end(self, path: str) -> np.ndarray:
        """decode (soundfile), channels averaged, resampy to 16 kHz, numpy log-mel (vggish_input's steps)."""
        vggish_input, params = self.modules["vggish_input"], self.modules["vggish_params"]
        data, rate = vggish_input.wav_read(path)
        samples = data / 32768.0
        if samples.ndim > 1:
            samples = samples.mean(axis=1)
        if rate != params.SAMPLE_RATE:
            samples = self.modules_resample(samples, rate, params.SAMPLE_RATE)
        return self.modules["mel_features"].log_mel_spectrogram(
            samples,
            audio_sample_rate=params.SAMPLE_RATE,
            log_offset=params.LOG_OFFSET,
            window_length_secs=params.STFT_WINDOW_LENGTH_SECONDS,
            hop_length_secs=params.STFT_HOP_LENGTH_SECONDS,
            num_mel_bins=params.NUM_MEL_BINS,
            lower_edge_hertz=params.MEL_MIN_HZ,
            upper_edge_hertz=params.MEL_MAX_HZ,
        ), len(samples)

    @staticmethod
    def modules_resample(samples, rate, new_rate):
        import resampy  # what vggish_input.waveform_to_examples calls

        return resampy.resample(samples, rate, new_rate)

    def log_mel_stats(self, path: str) -> np.ndarray:
        frames, length = self.front_end(path)
        patches = cut_windows(frames, self.windowing)
        valid = self.windowing.present(length / 16000) == 1
        stats = np.concatenate([patches.mean(axis=1), patches.std(axis=1)], axis=-1)[valid]
        return stats / np.linalg.norm(stats, axis=-1, keepdims=True)

    def vggish(self, path: str) -> np.ndarray:
        frames, length = self.front_end(path)
        patches = cut_windows(frames, self.windowing)
        valid = self.windowing.present(length / 16000) == 1
        conv = self.session.run(self.conv4_2, {self.features: patches[valid]})
        embedding = conv.mean(axis=(1, 2))
        return embedding / np.linalg.norm(embedding, axis=-1, keepdims=True)


def timed_passes(sides: dict, paths: list[str], rounds: int) -> tuple[dict, dict]:
    """Each side on each clip in turn (the sides alternate clip by clip, so a change in the machine's
    load hits both alike), after one warm-up pass each.

    Returns ({side: median clips/s over the rounds, "ratio": median of the rounds' ours / reference
    wall-time ratio, "cpu_ratio": the same of this process's CPU time}, each side's warm-up outputs).
    """
    outputs = {name: [run(path) for path in paths] for name, run in sides.items()}  # warm-up
    wall = {name: [] for name in sides}
    cpu = {name: [] for name in sides}
    for _ in range(rounds):
        spent = {name: [0.0, 0.0] for name in sides}
        for path in paths:
            for name, run in sides.items():
                started, started_cpu = time.perf_counter(), time.process_time()
                run(path)
                spent[name][0] += time.perf_counter() - started
                spent[name][1] += time.process_time() - started_cpu
        for name in sides:
            wall[name].append(spent[name][0])
            cpu[name].append(spent[name][1])
    summary = {name: len(paths) / statistics.median(values) for name, values in wall.items()}
    summary["ratio"] = statistics.median(r / o for r, o in zip(wall["reference"], wall["ours"]))
    summary["cpu_ratio"] = statistics.median(r / o for r, o in zip(cpu["reference"], cpu["ours"]))
    return summary, outputs


def largest_difference(first: list, second: list) -> float:
    return max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(first, second))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference-dir", required=True, type=Path, help="research/audioset/vggish of tensorflow/models"
    )
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    modules = load_reference(args.reference_dir.expanduser().resolve())
    golden_path = args.shared / "golden" / "vggish_reference.npz"
    root = args.shared / "data" / "RAVDESS"
    if not golden_path.is_file() or not root.is_dir():
        fail(f"--shared {args.shared}: needs golden/vggish_reference.npz and data/RAVDESS")

    import tensorflow as tf

    from mater_tf.corpora import label_names, list_corpus
    from mater_tf.data.extraction import ClipExtractor, Windowing, build_extractor
    from mater_tf.features import log_mel
    from mater_tf.features.embedders import audio_embedder
    from mater_tf.media import decode_audio
    from pipelines.prepare import prepare

    clips, skipped = list_corpus("ravdess", root)
    paths = [clip.path for clip in clips]
    windowing = Windowing(8, 0.5)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = write_checkpoint(
            golden_weights(dict(np.load(golden_path))), f"{folder}/vggish_model.ckpt"
        )
        reference = Reference(modules, checkpoint, windowing)
        vggish = ClipExtractor(windowing, audio_embedder(f"vggish:{checkpoint}"))
        logmel = ClipExtractor(windowing, audio_embedder("logmel"))

        def ours_front_end(path):
            waveform = decode_audio(path)
            return log_mel(waveform).numpy()

        def ours_embedding(extractor):
            def run(path):
                record = extractor.extract(path, "clip").record
                return record.audio_embedding[record.audio_valid == 1]

            return run

        def ours_prepare(extractor, info):
            def run(_):  # one `mater-tf prepare` run over every clip (tf.data decoding, 2 workers)
                with tempfile.TemporaryDirectory() as out:
                    prepare(
                        clips,
                        skipped,
                        extractor,
                        out,
                        "ravdess",
                        label_names("ravdess", clips),
                        info,
                        workers=2,
                    )

            return run

        results = {"machine": os.uname().nodename, "cpus": os.cpu_count(), "load_before": os.getloadavg()}
        rows = []
        for label, sides, compare in [
            (
                "front end (decode, resample, log-mel)",
                {"reference": lambda p: reference.front_end(p)[0], "ours": ours_front_end},
                True,
            ),
            ("logmel embedder", {"reference": reference.log_mel_stats, "ours": ours_embedding(logmel)}, True),
            ("vggish: embedder", {"reference": reference.vggish, "ours": ours_embedding(vggish)}, True),
        ]:
            rates, outputs = timed_passes(sides, paths, args.rounds)
            difference = largest_difference(outputs["reference"], outputs["ours"]) if compare else None
            rows.append((label, rates, difference))
        # `mater-tf prepare`: one "clip" of timed_passes is a whole run over every clip here.
        for label, spec, reference_run in [
            ("logmel, mater-tf prepare (2 workers)", "logmel", reference.log_mel_stats),
            ("vggish:, mater-tf prepare (2 workers)", f"vggish:{checkpoint}", reference.vggish),
        ]:
            extractor, info = build_extractor(8, 0.5, ["audio"], None, spec)
            sides = {
                "reference": lambda _, run=reference_run: [run(p) for p in paths],
                "ours": ours_prepare(extractor, info),
            }
            rates, _ = timed_passes(sides, ["all"], args.rounds)
            rows.append(
                (
                    label,
                    {
                        **rates,
                        "reference": rates["reference"] * len(paths),
                        "ours": rates["ours"] * len(paths),
                    },
                    None,
                )
            )
        results["load_after"] = os.getloadavg()
        tf.keras.backend.clear_session()
    print(
        f"RAVDESS sample: {len(paths)} wavs, 8 x 0.5 s windows, {args.rounds} rounds, sides alternating (medians)"
    )
    print(
        f"{'path':<40} {'reference clips/s':>17} {'ours clips/s':>12} {'ratio':>6} {'CPU-time ratio':>14}"
        "  largest difference"
    )
    results["rows"] = []
    for label, rates, difference in rows:
        shown = f"{difference:.2e}" if difference is not None else "(as above)"
        print(
            f"{label:<40} {rates['reference']:>17.1f} {rates['ours']:>12.1f} {rates['ratio']:>5.2f}x "
            f"{rates['cpu_ratio']:>13.2f}x  {shown}"
        )
        results["rows"].append({"path": label, **rates, "largest_difference": difference})
    print(f"load average before / after: {results['load_before'][0]:.1f} / {results['load_after'][0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
