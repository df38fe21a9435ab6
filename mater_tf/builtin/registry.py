"""The trained models that ship inside the package, their checksums and their cards.

Beside this module:

* `models.yaml`: the hand-written part of every card (what the model is for
  and not for, its held-out figures with their protocol, n and command,
  its licence) and which model `mater-tf predict` uses by default;
* `<name>.json`: the provenance of a model's files, written by the command
  that made them (`pipelines/train_builtin.py` for the voice): the sha256 of
  every file, the command, the training data's checksums, the mater-tf
  version;
* `<name>/`: the files themselves (the voice: a SavedModel export, which
  `mater_tf.serving.predictor.Predictor` loads as it loads any export).

Every file is checked against its sha256 when a model is loaded, so a damaged
or incomplete install is refused in one line, naming the file and the fix.
`card_markdown` renders a card; `docs/models.md` is all of them
(`catalogue_markdown`), and a test keeps the two equal.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from mater_tf.errors import UserError

BUILTIN_DIR = Path(__file__).resolve().parent
CARDS_FILE = "models.yaml"
REINSTALL = 'reinstall mater-tf (pip install --force-reinstall --no-deps "mater-tf[media]" or ".[media]")'


@dataclasses.dataclass(frozen=True)
class BuiltinModel:
    """A built-in model: its name, card (models.yaml) and provenance (<name>.json)."""

    name: str
    card: dict
    provenance: dict

    @property
    def kind(self) -> str:
        return self.card["kind"]

    @property
    def path(self) -> Path:
        """The model's files: a folder (an export) or one file."""
        return BUILTIN_DIR / self.card["files"]

    @property
    def sha256(self) -> str:
        return self.provenance["sha256"]

    @property
    def face_channel(self) -> str | None:
        return self.card.get("face_channel")


def listing_checksum(files: dict) -> str:
    """The sha256 of a model's file list: `sha256  path` lines sorted by path (as `sha256sum`
    prints them), so one number stands for every file's bytes and name."""
    lines = "".join(f"{digest}  {path}\n" for path, digest in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def files_of(root: Path) -> dict:
    """{path relative to the built-in folder: sha256} of a model's files (a folder or a file)."""
    paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    return {path.relative_to(BUILTIN_DIR).as_posix(): file_sha256(path) for path in paths}


def _read_cards() -> dict:
    import yaml

    path = BUILTIN_DIR / CARDS_FILE
    try:
        cards = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"{path}: the built-in models' list cannot be read ({error}); {REINSTALL}") from None
    if not isinstance(cards, dict) or not isinstance(cards.get("models"), dict):
        raise UserError(f"{path}: the built-in models' list is damaged; {REINSTALL}")
    return cards


def builtin_names() -> list[str]:
    """The built-in models' names, the default first."""
    cards = _read_cards()
    return sorted(cards["models"], key=lambda name: (name != cards["default"], name))


def default_name() -> str:
    return _read_cards()["default"]


def get(name: str) -> BuiltinModel:
    """The built-in model `name` (its files not yet checked: `verified_path`).

    Raises:
        UserError: for an unknown name (listing the built-ins), or a missing
            or unreadable provenance file.
    """
    cards = _read_cards()
    if name not in cards["models"]:
        raise UserError(
            f"no built-in model named '{name}'; the built-ins are {', '.join(builtin_names())} "
            "(mater-tf models shows their cards)"
        )
    path = BUILTIN_DIR / f"{name}.json"
    try:
        provenance = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"built-in model {name}: {path} is missing; {REINSTALL}") from None
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"built-in model {name}: {path} cannot be read ({error}); {REINSTALL}") from None
    return BuiltinModel(name, cards["models"][name], provenance)


def verified_path(model: BuiltinModel) -> Path:
    """The model's files, each checked against its recorded sha256.

    Raises:
        UserError: one line naming the first file missing or damaged, and the fix.
    """
    recorded = model.provenance.get("files") or {}
    if not recorded or listing_checksum(recorded) != model.sha256:
        raise UserError(
            f"built-in model {model.name}: {BUILTIN_DIR / (model.name + '.json')} is damaged; {REINSTALL}"
        )
    for relative, digest in sorted(recorded.items()):
        path = BUILTIN_DIR / relative
        if not path.is_file():
            raise UserError(f"built-in model {model.name}: {path} is missing; {REINSTALL}")
        if file_sha256(path) != digest:
            raise UserError(
                f"built-in model {model.name}: {path} does not match its checksum (sha256 {digest[:12]}... "
                f"expected): the file is damaged; {REINSTALL}"
            )
    return model.path


def is_builtin(text: str) -> bool:
    """Whether `text` names a built-in model."""
    return text in _read_cards()["models"]


def fold_accuracies(figures: dict, clips_per_fold: int) -> tuple[list[float], float, float]:
    """(accuracy % per fold, mean, std over folds with ddof 1) from the correct clips per fold."""
    import numpy as np

    accuracies = [100.0 * correct / clips_per_fold for correct in figures["correct"]]
    return accuracies, float(np.mean(accuracies)), float(np.std(accuracies, ddof=1))


def _row(name: str, figures: dict, clips_per_fold: int) -> str:
    accuracies, mean, std = fold_accuracies(figures, clips_per_fold)
    return f"| {name} | " + " | ".join(f"{v:.1f}" for v in accuracies) + f" | **{mean:.1f} +- {std:.1f}** |"


def card_markdown(name: str) -> str:
    """The card of one built-in model, as Markdown (what `mater-tf models NAME` prints)."""
    model = get(name)
    card, provenance = model.card, model.provenance
    default = " (the default of `mater-tf predict`)" if name == default_name() else ""
    lines = [f"## {name}{default}", "", card["summary"].strip(), ""]
    lines += ["### Trained on", "", card["trained_on"].strip(), ""]
    data = provenance.get("training_data")
    if data:
        lines += [
            f"- corpus: {data['corpus']}, {data['clips']} clips of {len(data['subjects'])} speakers "
            f"({', '.join(data['subjects'])})",
            f"- classes ({len(data['classes'])}): {', '.join(data['classes'])}",
            f"- the clips' listing (name and sha256 of every file), sha256 `{data['files_sha256']}`",
            "",
        ]
    estimate = card.get("estimate")
    lines += ["### Accuracy on speakers it never heard" if model.kind == "voice" else "### Accuracy", ""]
    if estimate:
        per_fold = estimate["clips_per_fold"]
        _, mean, std = fold_accuracies(estimate, per_fold)
        folds = len(estimate["correct"])
        lines += [
            f"**{mean:.1f} +- {std:.1f}%** of the clips of speakers it never heard (mean +- std over "
            f"{folds} folds, n = {per_fold} test clips per fold, {folds * per_fold} in all; chance "
            f"{estimate['chance']:.1f}%).",
            "",
            estimate["protocol"].strip(),
            "",
            f"    {estimate['command']}",
            "",
            "| test actors | " + " | ".join(estimate["fold_names"]) + " | mean +- std |",
            "| --- | " + " | ".join("---" for _ in range(folds)) + " | --- |",
            _row(card["recipe_name"], estimate, per_fold),
        ]
        # The baselines on the same folds, each with what it is and its command.
        references = estimate.get("references", [])
        lines += [_row(reference["name"], reference, per_fold) for reference in references]
        for reference in references:
            lines += [
                "",
                f"The {reference['name']} is {reference['what'].strip()}",
                "",
                f"    {reference['command']}",
            ]
        lines += ["", estimate["baseline_note"].strip(), ""]
    else:
        lines += [card["accuracy"].strip(), ""]
    if card.get("mapping_note"):
        from mater_tf.features.expression import FACE_TO_VOICE

        lines += [
            "### Its classes on the voice model's",
            "",
            "| face class (FER2013) | voice label (RAVDESS) |",
        ]
        lines += ["| --- | --- |"] + [f"| {face} | {voice} |" for face, voice in FACE_TO_VOICE.items()]
        lines += ["| (none) | calm |", "", card["mapping_note"].strip(), ""]
    lines += ["### What it is for, and not for", "", card["use"].strip(), ""]
    lines += ["### Licence", "", card["licence"].strip(), ""]
    lines += ["### Files", ""]
    size = sum((BUILTIN_DIR / relative).stat().st_size for relative in provenance["files"]) / 1e6
    lines += [
        f"- `mater_tf/builtin/{card['files']}` ({size:.1f} MB), sha256 of its file list `{model.sha256}`"
    ]
    if provenance.get("command"):
        lines += [
            f"- made by `{provenance['command']}` (mater-tf {provenance['mater_tf_version']}"
            + (
                f", source commit {provenance['source_commit'][:12]}"
                if provenance.get("source_commit")
                else ""
            )
            + ")",
        ]
        if provenance.get("weights_sha256"):
            lines += [
                f"- the weights' values, sha256 `{provenance['weights_sha256']}`: what a rerun of that command "
                "reproduces (model.keras itself also records when it was saved)"
            ]
        if provenance.get("training_seconds"):
            lines += [
                f"- training took {provenance['training_seconds'] / 60:.1f} min on {provenance['machine']}; "
                f"the training records' manifest.json had sha256 `{data['records_manifest_sha256']}`"
            ]
    if provenance.get("source"):
        lines += [f"- {provenance['source'].strip()}"]
    return "\n".join(lines).rstrip() + "\n"


def catalogue_markdown() -> str:
    """docs/models.md: the introduction and every built-in's card."""
    cards = _read_cards()
    parts = [cards["introduction"].strip() + "\n"]
    parts += [card_markdown(name) for name in builtin_names()]
    return "\n".join(parts)
