"""Corpus readers: list a corpus's clips with label and subject parsed from the names.

Each reader returns `(clips, skipped)`: the usable clips sorted by id, and
`(path, reason)` for every file it passed over, so prepare can record them.

Label sets (fixed; the label index is the position in the tuple):
  * ravdess: neutral, calm, happy, sad, angry, fearful, disgust, surprised
    (RAVDESS emotion codes 01-08). Speech only (vocal channel 01), as in the
    paper; song files are skipped. Subject = actor "01".."24" (odd = male).
  * cremad: anger, disgust, fear, happy, neutral, sad (ANG DIS FEA HAP NEU
    SAD). Subject = actor id "1001".."1091".
  * csv: the sorted distinct labels of the CSV (or the order given with
    `label_names`), subject from its `subject` column.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from mater_tf.errors import UserError
from mater_tf.media import AUDIO_SUFFIXES, VIDEO_SUFFIXES

RAVDESS_LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
CREMAD_CODES = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
CREMAD_LABELS = ("anger", "disgust", "fear", "happy", "neutral", "sad")
CORPORA = ("ravdess", "cremad", "csv")


@dataclasses.dataclass(frozen=True)
class Clip:
    """One clip to prepare."""

    path: str
    clip_id: str
    corpus: str
    subject: str
    label: int
    label_name: str


def _media_files(root: Path) -> list[Path]:
    suffixes = VIDEO_SUFFIXES + AUDIO_SUFFIXES
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _prefer_video(candidates: dict[str, list[Path]]) -> tuple[dict[str, Path], list]:
    """One file per clip: the audio-visual one when both exist."""
    chosen, skipped = {}, []
    for clip_id, paths in candidates.items():
        paths = sorted(paths, key=lambda p: (p.suffix.lower() not in VIDEO_SUFFIXES, str(p)))
        chosen[clip_id] = paths[0]
        skipped += [
            (str(p), f"duplicate of {paths[0].name} (the audio-visual file is used)") for p in paths[1:]
        ]
    return chosen, skipped


def list_ravdess(root: str | Path) -> tuple[list[Clip], list]:
    """RAVDESS `MM-VV-EE-II-SS-RR-AA` files under `root` (any of its released layouts)."""
    candidates, skipped = {}, []
    for path in _media_files(Path(root)):
        parts = path.stem.split("-")
        if len(parts) != 7 or not all(p.isdigit() for p in parts):
            skipped.append((str(path), "name is not a RAVDESS MM-VV-EE-II-SS-RR-AA code"))
            continue
        modality, vocal, emotion = parts[0], parts[1], int(parts[2])
        if modality == "02":
            skipped.append((str(path), "video-only file (modality 02) has no audio; the 01 file is used"))
            continue
        if vocal != "01":
            skipped.append((str(path), "song (vocal channel 02); the paper uses speech"))
            continue
        if not 1 <= emotion <= len(RAVDESS_LABELS):
            skipped.append((str(path), f"unknown RAVDESS emotion code {parts[2]} (expected 01-08)"))
            continue
        clip_id = "-".join(parts[1:])  # the same clip in its AV and audio-only files
        candidates.setdefault(clip_id, []).append(path)
    chosen, duplicates = _prefer_video(candidates)
    clips = []
    for _, path in sorted(chosen.items()):
        parts = path.stem.split("-")
        label = int(parts[2]) - 1
        clips.append(Clip(str(path), path.stem, "ravdess", parts[6], label, RAVDESS_LABELS[label]))
    return clips, skipped + duplicates


def list_cremad(root: str | Path) -> tuple[list[Clip], list]:
    """CREMA-D `ACTOR_SENTENCE_EMOTION_LEVEL` files (VideoFlash/, AudioWAV/, AudioMP3/)."""
    candidates, skipped = {}, []
    for path in _media_files(Path(root)):
        parts = path.stem.split("_")
        if len(parts) != 4 or not parts[0].isdigit():
            skipped.append((str(path), "name is not a CREMA-D ACTOR_SENTENCE_EMOTION_LEVEL code"))
            continue
        if parts[2] not in CREMAD_CODES:
            skipped.append(
                (str(path), f"unknown CREMA-D emotion '{parts[2]}' (expected {', '.join(CREMAD_CODES)})")
            )
            continue
        candidates.setdefault(path.stem, []).append(path)
    chosen, duplicates = _prefer_video(candidates)
    clips = []
    for clip_id, path in sorted(chosen.items()):
        parts = clip_id.split("_")
        label = CREMAD_CODES.index(parts[2])
        clips.append(Clip(str(path), clip_id, "cremad", parts[0], label, CREMAD_LABELS[label]))
    return clips, skipped + duplicates


def list_csv(csv_path: str | Path, label_names=None) -> tuple[list[Clip], list]:
    """Any corpus: a CSV with columns path, label, subject (paths relative to the CSV's folder)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise UserError(
            f"{csv_path}: CSV not found; give --root the CSV file with columns path,label,subject"
        )
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"path", "label", "subject"} - set(reader.fieldnames or [])
        if missing:
            raise UserError(
                f"{csv_path}: missing column(s) {', '.join(sorted(missing))}; the header must name path,label,subject"
            )
        rows = list(reader)
    names = tuple(label_names) if label_names else tuple(sorted({row["label"].strip() for row in rows}))
    clips, skipped = [], []
    for line, row in enumerate(rows, start=2):
        path = Path(row["path"].strip())
        path = path if path.is_absolute() else csv_path.parent / path
        label, subject = row["label"].strip(), row["subject"].strip()
        if label not in names:
            skipped.append(
                (str(path), f"{csv_path}:{line}: label '{label}' is not one of {', '.join(names)}")
            )
        elif not subject:
            skipped.append((str(path), f"{csv_path}:{line}: empty subject"))
        else:
            clips.append(Clip(str(path), path.stem, "csv", subject, names.index(label), label))
    return sorted(clips, key=lambda c: c.clip_id), skipped


def list_corpus(corpus: str, root: str | Path) -> tuple[list[Clip], list]:
    """Dispatches to the reader of `corpus`; raises UserError when nothing usable is found."""
    if corpus in ("ravdess", "cremad") and not Path(root).is_dir():
        raise UserError(f"--root '{root}' is not a folder; give the corpus's top folder")
    if corpus == "ravdess":
        found = list_ravdess(root)
    elif corpus == "cremad":
        found = list_cremad(root)
    elif corpus == "csv":
        found = list_csv(root)
    else:
        raise UserError(f"--corpus '{corpus}' is not one of {', '.join(CORPORA)}")
    if not found[0]:
        raise UserError(f"no {corpus} clips found under '{root}' ({len(found[1])} files passed over)")
    return found


def label_names(corpus: str, clips: list[Clip]) -> tuple:
    if corpus == "ravdess":
        return RAVDESS_LABELS
    if corpus == "cremad":
        return CREMAD_LABELS
    names = {}
    for clip in clips:
        names[clip.label] = clip.label_name
    return tuple(names[i] for i in sorted(names))
