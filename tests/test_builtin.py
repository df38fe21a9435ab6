"""The built-in models: shipped files and their checksums, the cards, and `mater-tf predict` with no
`--model` (the voice, and the face beside it on a real video), offline from a fresh install."""

import csv
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mater_tf import builtin
from mater_tf.builtin import registry
from mater_tf.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).resolve().parent / "data" / "builtin_reference.json"
# The RAVDESS labels and FER2013's classes in the classifier's output order, as
# ../shared/weights/README.md and the RAVDESS naming convention give them.
RAVDESS_LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
FER2013_ORDER = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
HAPPY_VIDEO = "CREMA-D/VideoFlash/1001_DFA_HAP_XX.flv"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    return lines[0]


def test_every_shipped_file_matches_its_recorded_checksum_and_the_card_shows_it():
    docs = (ROOT / "docs" / "models.md").read_text()
    total = 0
    for name in builtin.builtin_names():
        provenance = json.loads((registry.BUILTIN_DIR / f"{name}.json").read_text())
        assert provenance["files"], name
        for relative, digest in provenance["files"].items():
            path = registry.BUILTIN_DIR / relative
            assert sha256(path) == digest, relative
            total += path.stat().st_size
        lines = "".join(f"{d}  {p}\n" for p, d in sorted(provenance["files"].items()))
        assert hashlib.sha256(lines.encode()).hexdigest() == provenance["sha256"]
        assert provenance["sha256"] in docs  # the card names the checksum the loader checks
    assert total < 5_000_000  # a few MB inside the package


def test_the_voice_model_records_how_it_was_made():
    provenance = builtin.get("ravdess-voice").provenance
    assert provenance["command"] == "python pipelines/train_builtin.py --data ../shared/data/RAVDESS-dev-16k"
    assert provenance["experiment"] == "experiments/builtin/ravdess_voice.yaml"
    data = provenance["training_data"]
    assert data["clips"] == provenance["training_clips"] == 960
    assert data["subjects"] == [f"{actor:02d}" for actor in range(1, 17)]
    assert data["classes"] == RAVDESS_LABELS
    assert re.fullmatch(r"[0-9a-f]{64}", data["files_sha256"])
    assert re.fullmatch(r"[0-9a-f]{64}", data["records_manifest_sha256"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", provenance["mater_tf_version"])
    # The experiment inherits the shipped recipe and trains every actor (no test fold).
    text = (ROOT / provenance["experiment"]).read_text()
    assert "base: ../logmel/ravdess_audio.yaml" in text and "test_fold: -1" in text


def test_docs_models_md_is_the_cards_and_holds_the_research_record_figures():
    docs = (ROOT / "docs" / "models.md").read_text()
    assert docs == builtin.catalogue_markdown(), "run python pipelines/train_builtin.py --card-only"
    card = builtin.card_markdown("ravdess-voice")
    # The recipe's 8-fold estimate and the reference beside it, as the research record's table
    # states them, and the README's results table gives their means.
    record = (ROOT / "experiments" / "logmel" / "RESEARCH.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for row, figure in (("the recipe (`stats` + concat", "57.2 +- 7.3"), ("reference |", "47.7 +- 7.0")):
        assert figure in readme
        line = next(line for line in record.splitlines() if line.startswith(f"| {row}"))
        folds = [cell.strip() for cell in line.split("|")[2:10]]
        assert " | ".join(folds) in card and figure in line and f"**{figure}**" in card
    assert "n = 120 test clips per fold, 960 in all" in card
    assert (
        "mater-tf cv --experiment experiments/logmel/ravdess_dev16_audio.yaml --set cv.validation=false"
        in card
    )
    assert "CC BY-NC-SA 4.0" in card and "non-commercial, share-alike" in card
    assert "Not for: decisions about people" in card and "quiet room" in card
    face = builtin.card_markdown("fer2013-face")
    assert "MIT" in face and "| (none) | calm |" in face and "never fused" in face


def test_the_commands_in_the_cards_and_the_readme_section_parse():
    from pipelines import train_builtin

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Predict with a built-in model") : readme.index("## Set-up")]
    texts = (ROOT / "docs" / "models.md").read_text() + section
    # Inline (`mater-tf ...`), at the start of a line, or after && in a shell line; up to a comment.
    commands = re.findall(r"(?:`|^\s*|&& )(mater-tf [a-z]+[^`\n#]*)", texts, re.M)
    verbs = {command.split()[1] for command in commands}
    assert {"predict", "models", "cv"} <= verbs, commands
    for command in commands:
        build_parser().parse_args(shlex.split(command)[1:])
    scripts = re.findall(r"python pipelines/train_builtin.py([^\n`)]*)", texts)
    assert scripts
    for arguments in scripts:
        train_builtin.parse_args(shlex.split(arguments))


def test_the_face_classes_map_onto_the_voice_labels():
    from mater_tf.features.expression import FACE_LABELS, FACE_TO_VOICE, FER2013_CLASSES

    assert list(FER2013_CLASSES) == FER2013_ORDER
    voice = json.loads((registry.BUILTIN_DIR / "ravdess-voice" / "mater_tf.json").read_text())["label_names"]
    assert voice == RAVDESS_LABELS
    assert set(FACE_TO_VOICE.values()) <= set(voice) and len(set(FACE_TO_VOICE.values())) == 7
    assert [label for label in voice if label not in FACE_LABELS] == ["calm"]
    assert FACE_TO_VOICE["fear"] == "fearful" and FACE_TO_VOICE["surprise"] == "surprised"


def test_models_lists_the_built_ins_and_prints_a_card(capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert listing.splitlines()[0].startswith("ravdess-voice") and "mater-tf predict's default" in listing
    assert "fer2013-face" in listing and "CC BY-NC-SA 4.0" in listing
    assert main(["models", "ravdess-voice"]) == 0
    assert capsys.readouterr().out == builtin.card_markdown("ravdess-voice")


def test_an_unknown_built_in_gets_one_line_naming_the_built_ins(capsys, tmp_path):
    assert main(["models", "ravdess"]) == 2
    line = one_line_error(capsys)
    assert "no built-in model named 'ravdess'" in line and "ravdess-voice, fer2013-face" in line
    assert main(["predict", str(tmp_path / "x.wav"), "--model", "ravdess"]) == 2
    line = one_line_error(capsys)
    assert "--model ravdess: no such folder, and no built-in model of that name" in line
    assert "ravdess-voice" in line
    assert main(["predict", str(tmp_path / "x.wav"), "--model", "fer2013-face"]) == 2
    assert "is a face channel shown beside a voice model" in one_line_error(capsys)


@pytest.fixture
def damaged_copy(tmp_path, monkeypatch):
    """The built-in folder copied to tmp_path and used instead of the installed one."""
    copy = tmp_path / "builtin"
    shutil.copytree(registry.BUILTIN_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    monkeypatch.setattr(registry, "BUILTIN_DIR", copy)
    return copy


def test_a_corrupted_built_in_file_gets_one_clear_line(damaged_copy, tmp_path, capsys):
    model = damaged_copy / "ravdess-voice" / "model.keras"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    assert main(["predict", str(tmp_path / "clip.wav")]) == 2
    line = one_line_error(capsys)
    assert f"{model} does not match its checksum" in line and "reinstall mater-tf" in line
    assert main(["models", "ravdess-voice"]) == 2
    assert f"{model} does not match its checksum" in one_line_error(capsys)


def test_a_missing_built_in_file_gets_one_clear_line(damaged_copy, tmp_path, capsys):
    face = damaged_copy / "fer2013-face" / "fer2013_mini_xception.hdf5"
    face.unlink()
    assert main(["models", "fer2013-face"]) == 2
    line = one_line_error(capsys)
    assert f"built-in model fer2013-face: {face} is missing" in line and "reinstall mater-tf" in line
    (damaged_copy / "ravdess-voice.json").unlink()
    assert main(["predict", str(tmp_path / "clip.wav")]) == 2
    assert f"{damaged_copy / 'ravdess-voice.json'} is missing" in one_line_error(capsys)


@pytest.fixture(scope="module")
def default_predictor():
    from mater_tf.serving.predictor import Predictor

    return Predictor(None)


@pytest.mark.slow
def test_outputs_on_two_real_clips_equal_the_stored_reference(shared_dir, default_predictor):
    """The stored outputs were recorded once, when the weights were made (pipelines/train_builtin.py):
    a change to the weights or the audio front end must record them again, deliberately."""
    reference = json.loads(REFERENCE.read_text())
    assert default_predictor.builtin.name == "ravdess-voice"
    assert reference["model_sha256"] == default_predictor.builtin.sha256
    for clip, expected in reference["clips"].items():
        result = default_predictor.predict(shared_dir / "data" / clip)
        assert result["model"] == "ravdess-voice" and result["model_sha256"] == reference["model_sha256"]
        assert result["num_windows"] == expected["num_windows"] and result["emotion"] == expected["emotion"]
        got = {s["first_window"]: s["probabilities"] for s in result["segments"]}
        assert sorted(got) == [s["first_window"] for s in expected["segments"]]
        for segment in expected["segments"]:
            np.testing.assert_allclose(got[segment["first_window"]], segment["probabilities"], atol=1e-5)
    # Two clips of actors the model trained on, in their labels (happy, angry): a sanity check.
    assert [c["emotion"] for c in reference["clips"].values()] == ["happy", "angry"]


@pytest.fixture(scope="module")
def happy_video(shared_dir_module, tmp_path_factory):
    """`mater-tf predict` with no --model on a real CREMA-D video of a happy face."""
    out = tmp_path_factory.mktemp("face")
    assert main(["predict", str(shared_dir_module / "data" / HAPPY_VIDEO), "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_the_face_is_shown_beside_the_voice_on_a_real_video(happy_video, capsys):
    result = json.loads((happy_video / "1001_DFA_HAP_XX.json").read_text())
    face = result["face_expression"]
    assert result["model"] == "ravdess-voice" and result["face"] == "found"
    assert face["model"] == "fer2013-face" and face["fusion"].startswith("none:")
    assert face["labels"] == ["angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral"]
    assert face["emotion"] == "happy"  # the actor's face, labelled happy by CREMA-D
    assert face["windows_with_face"] == len(result["windows"]) >= 3
    for window in result["windows"]:
        assert len(window["face_expression"]) == 7 and sum(window["face_expression"]) == pytest.approx(
            1, abs=1e-3
        )
        assert window["face_found"] and window["face_frames_found"] > 0
    # Not fused: the clip's emotion is the voice model's own output.
    assert result["probabilities"] == result["audio_probabilities"]
    with (happy_video / "1001_DFA_HAP_XX.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result["windows"])
    assert [float(rows[0][f"face_expression_{label}"]) for label in face["labels"]] == pytest.approx(
        result["windows"][0]["face_expression"]
    )
    assert rows[0]["face_expression"] in face["labels"]
    from mater_tf.reporting.timeline import timeline_figure

    labels = [axis.get_ylabel() for axis in timeline_figure(result).axes[:2]]
    assert labels == ["voice", "face\n(not fused)"]
    assert (happy_video / "1001_DFA_HAP_XX.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_live_with_the_built_in_shows_voice_and_face(shared_dir, happy_video, tmp_path, capsys):
    offline = json.loads((happy_video / "1001_DFA_HAP_XX.json").read_text())
    assert main(["predict", "--live", str(shared_dir / "data" / HAPPY_VIDEO), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("model: ravdess-voice (built-in, sha256 ")
    lines = [line for line in printed if "after its end" in line]
    assert len(lines) == len(offline["windows"])
    assert all(" | audio " in line and " | face " in line and "not fused" in line for line in lines)
    result = json.loads((tmp_path / "1001_DFA_HAP_XX.json").read_text())
    for live, window in zip(result["live"]["outputs"], offline["windows"]):
        np.testing.assert_allclose(live["face_expression"], window["face_expression"], atol=2e-3)
    assert result["face_expression"]["emotion"] == "happy"


OFFLINE_SITE = """
import os, socket

_connect = socket.socket.connect


def _refuse(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        with open(os.environ["NETWORK_LOG"], "a") as log:
            log.write(f"{address}\\n")
        raise OSError(f"network access in an offline test: {address}")
    return _connect(self, address)


socket.socket.connect = _refuse
"""


@pytest.mark.slow
def test_a_fresh_install_predicts_a_real_clip_offline(shared_dir, tmp_path):
    """The wheel built from this checkout, installed alone into an empty folder, predicts a real
    clip with the built-in model, every network connection refused (and none tried)."""
    source = tmp_path / "source"
    source.mkdir()
    for part in ("setup.py", "README.md", "LICENSE"):
        shutil.copy(ROOT / part, source / part)
    for package in ("mater_tf", "pipelines"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        pip
        + ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "wheel"), str(source)],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "wheel").glob("mater_tf-*.whl"))
    site = tmp_path / "site"
    subprocess.run(pip + ["install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True)
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "sitecustomize.py").write_text(OFFLINE_SITE)
    log = tmp_path / "network.log"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(offline), str(site)]),
        "NETWORK_LOG": str(log),
    }
    clip = (
        shared_dir
        / "data"
        / "RAVDESS"
        / "Audio_Speech_Actors_01-24"
        / "Actor_02"
        / "03-01-05-01-01-01-02.wav"
    )
    run = subprocess.run(
        [sys.executable, "-m", "mater_tf.cli.main", "predict", str(clip), "--out", "out"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "model: ravdess-voice (built-in" in run.stdout and "voice angry" in run.stdout
    result = json.loads((tmp_path / "out" / "03-01-05-01-01-01-02.json").read_text())
    assert result["model_sha256"] == builtin.get("ravdess-voice").sha256
    where = subprocess.run(
        [sys.executable, "-c", "import mater_tf; print(mater_tf.__file__)"],
        env=environment,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert Path(where).is_relative_to(site)  # the installed copy ran, not this checkout
    assert not log.exists()  # nothing tried to connect


@pytest.mark.slow
def test_a_truncated_clip_is_refused_though_windows_of_it_decode(shared_dir, default_predictor, tmp_path):
    from mater_tf.media import MediaError

    source = (shared_dir / "data" / "CREMA-D" / "VideoFlash" / "1001_DFA_ANG_XX.flv").read_bytes()
    (tmp_path / "cut.flv").write_bytes(source[: round(len(source) * 0.3)])  # 0.5 of its 2.27 s decode
    with pytest.raises(
        MediaError, match=r"cut.flv: truncated or corrupt: only 0.\d\d s of audio decode of the 2.2"
    ):
        default_predictor.predict(str(tmp_path / "cut.flv"))
    (tmp_path / "whole.flv").write_bytes(source)
    assert default_predictor.predict(str(tmp_path / "whole.flv"))["duration"] > 2
