"""Makes the built-in voice model that mater-tf ships, with one command anyone can rerun.

    python pipelines/train_builtin.py --data ../shared/data/RAVDESS-dev-16k

Run from the checkout's root. It runs, in order:

1. `mater-tf prepare` of the RAVDESS speech clips (8 x 0.5 s windows, log-mel
   patches kept) into `experiments/runs/builtin/records/ravdess-dev16-8x0.5`;
2. `mater-tf train --experiment experiments/builtin/ravdess_voice.yaml` (the
   shipped recipe, inherited, trained on every actor: no test fold);
3. copies the run's export into `mater_tf/builtin/ravdess-voice/` and writes
   `mater_tf/builtin/ravdess-voice.json`: every file's sha256, this command,
   the training data's checksums (the clips' listing and the records'
   manifest), the mater-tf version and the source commit;
4. records the model's outputs on two RAVDESS sample clips as the test's
   reference (`tests/data/builtin_reference.json`), where `../shared/data/RAVDESS`
   is beside the checkout;
5. writes the cards, `docs/models.md`.

Steps 1 and 2 resume (a finished run is not trained again; `--restart` trains
it again). `--card-only` does step 5 alone, after an edit of
`mater_tf/builtin/models.yaml`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = "ravdess-voice"
EXPERIMENT = "experiments/builtin/ravdess_voice.yaml"
WORKDIR = "experiments/runs/builtin"
RECORDS = f"{WORKDIR}/records/ravdess-dev16-8x0.5"
RUN = "ravdess-voice"
# Two real clips the reference outputs are recorded on (actors 01 and 02, happy and angry).
REFERENCE_CLIPS = (
    "RAVDESS/Audio_Speech_Actors_01-24/Actor_01/03-01-03-01-01-01-01.wav",
    "RAVDESS/Audio_Speech_Actors_01-24/Actor_02/03-01-05-01-01-01-02.wav",
)
REFERENCE_FILE = "tests/data/builtin_reference.json"
DOCS_FILE = "docs/models.md"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="train and package the built-in voice model (see the module doc)"
    )
    parser.add_argument(
        "--data",
        default="../shared/data/RAVDESS-dev-16k",
        help="the RAVDESS speech clips of actors 01-16, in the corpus's folder layout",
    )
    parser.add_argument("--restart", action="store_true", help="train again even if the run has finished")
    parser.add_argument("--card-only", action="store_true", help="only write docs/models.md from the cards")
    return parser.parse_args(argv)


def mater_tf(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "mater_tf.cli.main", *arguments]


def run_step(command: list[str]) -> None:
    shown = shlex.join(["mater-tf", *command[3:]])
    print(f"$ {shown}", flush=True)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    completed = subprocess.run(command, cwd=ROOT, env=environment)
    if completed.returncode:
        sys.exit(f"train_builtin: '{shown}' failed (exit code {completed.returncode})")


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def clips_listing(data: Path) -> tuple[str, int]:
    """(sha256 of the `sha256  path` lines of every clip, sorted by path; the clip count)."""
    clips = sorted(path for path in data.rglob("*.wav") if path.is_file())
    lines = "".join(f"{sha256_of(path)}  {path.relative_to(data).as_posix()}\n" for path in clips)
    return hashlib.sha256(lines.encode()).hexdigest(), len(clips)


def source_commit() -> str | None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+uncommitted changes" if dirty else "")


def package(run_dir: Path, data: Path, command: str, commands: list[str], commit: str | None) -> dict:
    """Copies the export into the package and writes its provenance; returns the provenance."""
    import keras

    import mater_tf
    import mater_tf.models  # noqa: F401 - registers MATER's classes with Keras
    from mater_tf.builtin.registry import BUILTIN_DIR, files_of, listing_checksum

    target = BUILTIN_DIR / NAME
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    # The run's model without its optimizer state (a third of the size), in Keras' own format, and
    # the export's description of its inputs (windowing, embedders) that predict reads.
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    model.save(target / "model.keras")
    shutil.copyfile(run_dir / "export" / "mater_tf.json", target / "mater_tf.json")
    weights = hashlib.sha256()
    for array in model.get_weights():
        weights.update(array.tobytes())
    split = json.loads((run_dir / "split.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    timing = json.loads((run_dir / "timing.json").read_text())
    files = files_of(target)
    listing, clips = clips_listing(data)
    provenance = {
        "name": NAME,
        "sha256": listing_checksum(files),
        "files": files,
        # The weights' values alone (model.keras also holds the date it was saved).
        "weights_sha256": weights.hexdigest(),
        "command": command,
        "commands_run": commands,
        "experiment": EXPERIMENT,
        "mater_tf_version": mater_tf.__version__,
        "source_commit": commit,
        "training_data": {
            "corpus": f"RAVDESS speech, 16 kHz mono ({data.name})",
            "clips": clips,
            "subjects": sorted(metrics["protocol"]["train_subjects"]),
            "classes": split["label_names"],
            "files_sha256": listing,
            "records_manifest_sha256": sha256_of(ROOT / RECORDS / "manifest.json"),
        },
        "training_clips": metrics["protocol"]["train_clips"],
        "training_seconds": round(sum(session["seconds"] for session in timing), 1),
        "machine": f"{os.cpu_count()}-core {platform.machine()} CPU",
    }
    (BUILTIN_DIR / f"{NAME}.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance


def record_reference(shared_data: Path) -> None:
    """The built-in's outputs on two real clips: every model input's probabilities, the clip's emotion."""
    from mater_tf.serving.predictor import Predictor

    predictor = Predictor(NAME)
    reference = {
        "about": (
            "outputs of the built-in voice model on two real RAVDESS sample clips, recorded by "
            "pipelines/train_builtin.py when the shipped weights were made; a change to the weights or the "
            "audio front end must record them again, deliberately"
        ),
        "model_sha256": predictor.builtin.sha256,
        "clips": {},
    }
    for clip in REFERENCE_CLIPS:
        result = predictor.predict(shared_data / clip)
        reference["clips"][clip] = {
            "emotion": result["emotion"],
            "num_windows": result["num_windows"],
            "segments": [
                {"first_window": s["first_window"], "probabilities": s["probabilities"]}
                for s in result["segments"]
            ],
        }
        print(f"reference: {clip}: {result['emotion']}", flush=True)
    path = ROOT / REFERENCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(reference, indent=1) + "\n")


def write_docs() -> None:
    from mater_tf.builtin.registry import catalogue_markdown

    (ROOT / DOCS_FILE).write_text(catalogue_markdown())
    print(f"cards written to {DOCS_FILE}")


def main(argv=None) -> int:
    args = parse_args(argv)
    # The checkout's mater_tf (whose mater_tf/builtin/ this writes), not an installed copy.
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's import banner, as mater-tf hides it
    os.chdir(ROOT)
    if args.card_only:
        write_docs()
        return 0
    data = Path(args.data)
    if not data.is_dir():
        sys.exit(
            f"train_builtin: --data {data}: no such folder; give the RAVDESS speech clips of actors 01-16"
        )
    started = time.time()
    commit = source_commit()  # before this command writes into the checkout
    command = shlex.join(["python", "pipelines/train_builtin.py", "--data", args.data])
    prepare = mater_tf(
        "prepare",
        "--corpus",
        "ravdess",
        "--root",
        args.data,
        "--out",
        RECORDS,
        "--windows",
        "8",
        "--window-seconds",
        "0.5",
        "--modalities",
        "audio",
        "--keep-log-mel",
    )
    train = mater_tf("train", "--experiment", EXPERIMENT, "--workdir", WORKDIR, "--run", RUN)
    if args.restart:
        train.append("--restart")
    for step in (prepare, train):
        run_step(step)
    run_dir = ROOT / WORKDIR / "builtin_ravdess_voice" / RUN
    provenance = package(
        run_dir, data, command, [shlex.join(["mater-tf", *step[3:]]) for step in (prepare, train)], commit
    )
    print(f"packaged mater_tf/builtin/{NAME}/ (sha256 of its file list {provenance['sha256']})")
    shared_data = data.parent
    if all((shared_data / clip).is_file() for clip in REFERENCE_CLIPS):
        record_reference(shared_data)
    else:
        print(f"reference outputs not recorded: the sample clips are not under {shared_data}")
    write_docs()
    print(
        f"done in {(time.time() - started) / 60:.1f} min (training {provenance['training_seconds'] / 60:.1f} min)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
