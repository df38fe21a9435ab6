"""Corpus readers: list a corpus's clips with label and subject parsed from the names.

Each reader returns `(clips, skipped)`: the usable clips sorted by id, and
`(path, reason)` for every file it passed over (not media, a name it cannot
parse, another file of a clip already listed, a broken link, ...), so every
file seen is either a clip or recorded with its reason. Folders are walked
following symbolic links (each real folder once). Clip paths are absolute, so
the same corpus named by another path lists the same clips.

Label sets (fixed; the label index is the position in the tuple):
  * ravdess: neutral, calm, happy, sad, angry, fearful, disgust, surprised
    (RAVDESS emotion codes 01-08). Speech only (vocal channel 01), as in the
    paper; song files are skipped. Subject = actor "01".."24" (odd = male).
  * cremad: anger, disgust, fear, happy, neutral, sad (ANG DIS FEA HAP NEU
    SAD). Subject = actor id "1001".."1091".
  * csv: the sorted distinct labels of the CSV (or the list given with
    `label_names`: then a row with another label is refused, naming its
    line), subject from its `subject` column. A clip's id is its file name
    without the suffix, or, where two rows' files share that name, its path
    relative to the CSV's folder.
"""

from __future__ import annotations

import codecs
import collections
import csv
import dataclasses
import os
from pathlib import Path

from mater_tf.errors import UserError
from mater_tf.media import (
    AUDIO_SUFFIXES,
    MEDIA_EXTRA,
    VIDEO_SUFFIXES,
    MediaError,
    ffmpeg_suffixes,
    is_video,
    probe,
)

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


def _walk(root: Path) -> tuple[list[Path], list]:
    """Every file under `root`, following symbolic links (each real folder once), and what was passed over."""
    files, skipped, seen = [], [], {}

    def unreadable(error):
        skipped.append((str(error.filename), f"folder cannot be read ({error.strerror})"))

    for folder, subfolders, names in os.walk(root, onerror=unreadable, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            skipped.append((folder, f"a link to a folder already listed ({seen[real]})"))
            subfolders[:] = []
            continue
        seen[real] = folder
        subfolders.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if not path.exists():
                skipped.append((str(path), "broken symbolic link (its target does not exist)"))
            elif not path.is_file():
                skipped.append((str(path), "not a regular file"))
            else:
                files.append(path)
    return files, skipped


def _media_files(root: Path, named=lambda path: False) -> tuple[list[Path], list]:
    """The media files under `root` (absolute paths), and every other file seen with its reason.

    What FFmpeg finds in a file decides: one with an audio stream is media, whatever its name
    (an .m4a, a clip saved as .dat). Files named as our audio or video files are listed without
    opening them (a broken one fails when it is decoded, with its reason); FFmpeg opens the others
    whose suffix one of its formats names, or whose name `named` accepts (a corpus's clip code),
    so a folder that links to /usr costs no FFmpeg open per file.
    """
    import importlib.util

    files, skipped = _walk(Path(os.path.abspath(root)))
    media, ffmpeg = [], importlib.util.find_spec("av") is not None
    for path in files:
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
            media.append(path)
            continue
        if not ffmpeg:
            skipped.append((str(path), f"not a media file (suffix '{suffix}'; not opened: {MEDIA_EXTRA})"))
            continue
        if suffix not in ffmpeg_suffixes() and not named(path):
            skipped.append(
                (str(path), f"not a media file (suffix '{suffix}' is no format FFmpeg reads; not opened)")
            )
            continue
        try:
            audio = probe(path).audio
        except MediaError as error:
            skipped.append(
                (
                    str(path),
                    f"not a media file (FFmpeg cannot open it: {str(error).removeprefix(f'{path}: ')})",
                )
            )
            continue
        if audio:
            media.append(path)
        else:
            skipped.append((str(path), "not a media file (FFmpeg finds no audio stream in it)"))
    return media, skipped


def _audio_visual(path: Path) -> bool:
    """Whether a clip's file has moving pictures: by its name where it is one of ours (no need to
    open every file of a corpus), else by what FFmpeg finds in it."""
    suffix = path.suffix.lower()
    return suffix in VIDEO_SUFFIXES or (suffix not in AUDIO_SUFFIXES and is_video(path))


def _prefer_video(candidates: dict[str, list[Path]]) -> tuple[dict[str, Path], list]:
    """One file per clip: the audio-visual one when both exist."""
    chosen, skipped = {}, []
    for clip_id, paths in candidates.items():
        if len(paths) > 1:
            paths = sorted(paths, key=lambda p: (not _audio_visual(p), str(p)))
        chosen[clip_id] = paths[0]
        for path in paths[1:]:
            if os.path.samefile(path, paths[0]):
                reason = f"the same file as {paths[0]} (reached through a link); listed once"
            elif _audio_visual(path) == _audio_visual(paths[0]):
                reason = f"another file of the same clip {clip_id} ({paths[0]} is used)"
            else:
                reason = f"audio-only copy of a clip (the audio-visual file is used: {paths[0].name})"
            skipped.append((str(path), reason))
    return chosen, skipped


def _ravdess_parts(path: Path) -> list[str] | None:
    parts = path.stem.split("-")
    return parts if len(parts) == 7 and all(p.isdigit() for p in parts) else None


def _cremad_parts(path: Path) -> list[str] | None:
    parts = path.stem.split("_")
    return parts if len(parts) == 4 and parts[0].isdigit() else None


def list_ravdess(root: str | Path) -> tuple[list[Clip], list]:
    """RAVDESS `MM-VV-EE-II-SS-RR-AA` files under `root` (any of its released layouts)."""
    candidates = {}
    media, skipped = _media_files(root, _ravdess_parts)
    for path in media:
        parts = _ravdess_parts(path)
        if parts is None:
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
    candidates = {}
    media, skipped = _media_files(root, _cremad_parts)
    for path in media:
        parts = _cremad_parts(path)
        if parts is None:
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


def _read_csv_rows(
    csv_path: Path,
    required=("path", "label", "subject"),
    header_hint: str = "the first line must name path,label,subject",
) -> list[dict]:
    """The rows of a CSV with the `required` columns (UTF-8, with or without Excel's byte-order
    mark); values stripped, a column a row lacks is ""."""
    if not csv_path.is_file():
        raise UserError(
            f"{csv_path}: CSV not found; give --root the CSV file with columns path,label,subject"
        )
    with csv_path.open("rb") as handle:
        head = handle.read(256)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head:
        # Excel's "Unicode Text" and PowerShell write UTF-16 (NUL bytes between ASCII letters, which
        # would even decode as UTF-8); the Latin-1 hint below would garble it.
        raise UserError(
            f"{csv_path}: UTF-16 text, not UTF-8; save the CSV as UTF-8 (Excel: 'CSV UTF-8'; "
            f"or iconv -f utf-16 -t utf-8 {csv_path.name} > {csv_path.stem}-utf8.csv)"
        )
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = [name.strip() for name in reader.fieldnames or []]
            missing = set(required) - set(fields)
            if missing:
                raise UserError(
                    f"{csv_path}: missing column(s) {', '.join(sorted(missing))} (header: {','.join(fields)}); "
                    f"{header_hint}"
                )
            reader.fieldnames = fields
            return [{key: (value or "").strip() for key, value in row.items() if key} for row in reader]
    except UnicodeDecodeError as error:
        line = csv_path.read_bytes()[: error.start].count(b"\n") + 1
        raise UserError(
            f"{csv_path}:{line}: not UTF-8 text (byte 0x{error.object[error.start]:02x}); save the CSV as "
            "UTF-8 (Excel: 'CSV UTF-8'; or iconv -f latin1 -t utf-8)"
        ) from None


def _csv_clip_ids(paths: list[Path], folder: Path) -> list[str]:
    """File names without suffix; a name shared by two files becomes its path relative to `folder`
    (without the suffix, or with it where only the suffix tells two files apart)."""

    def relative(path: Path, suffix: bool) -> str:
        path = path if suffix else path.with_suffix("")
        try:
            return path.relative_to(folder).as_posix()
        except ValueError:  # outside the CSV's folder
            return path.as_posix().lstrip("/")

    stems = collections.Counter(path.stem for path in paths)
    bare = collections.Counter(relative(path, False) for path in paths)
    return [
        path.stem if stems[path.stem] == 1 else relative(path, bare[relative(path, False)] > 1)
        for path in paths
    ]


def list_csv(csv_path: str | Path, label_names=None) -> tuple[list[Clip], list]:
    """Any corpus: a CSV with columns path, label, subject (paths relative to the CSV's folder).

    Raises:
        UserError: naming the file and line: not UTF-8, a missing column, or
            (with `label_names`) a label outside that list.
    """
    csv_path = Path(os.path.abspath(csv_path))
    rows = _read_csv_rows(csv_path)
    if label_names:
        names = tuple(label_names)
        unknown = [
            (line, row["label"]) for line, row in enumerate(rows, start=2) if row["label"] not in names
        ]
        if unknown:
            where = ", ".join(f"line {line} '{label}'" for line, label in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise UserError(
                f"{csv_path}: labels not in --labels {','.join(names)}: {where}{more}; correct those lines "
                "or add the label to --labels"
            )
    clips, skipped, usable, first_line = [], [], [], {}
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path}:{line}"
        if not row["path"]:
            skipped.append((where, f"{where}: empty path"))
            continue
        path = Path(row["path"])
        path = Path(os.path.abspath(path if path.is_absolute() else csv_path.parent / path))
        label, subject = row["label"], row["subject"]
        if not label:
            skipped.append((str(path), f"{where}: empty label; give the row a label"))
        elif not subject:
            skipped.append((str(path), f"{where}: empty subject; give the row its speaker's id"))
        elif str(path) in first_line:
            skipped.append(
                (str(path), f"{where}: the same file as line {first_line[str(path)]}; listed once")
            )
        else:
            first_line[str(path)] = line
            usable.append((path, subject, label))
    if not label_names:  # from the rows kept, so label indices have no gaps
        names = tuple(sorted({label for _, _, label in usable}))
    ids = _csv_clip_ids([path for path, _, _ in usable], csv_path.parent)
    for clip_id, (path, subject, label) in zip(ids, usable):
        clips.append(Clip(str(path), clip_id, "csv", subject, names.index(label), label))
    return sorted(clips, key=lambda c: c.clip_id), skipped


def label_counts(clips: list[Clip]) -> dict[str, int]:
    """Clips per label name, in label order."""
    counts = collections.Counter(clip.label_name for clip in clips)
    order = {clip.label_name: clip.label for clip in clips}
    return {name: counts[name] for name in sorted(counts, key=order.get)}


def reason_kind(reason: str) -> str:
    """The kind of a passed-over file's reason, for counting them (no file names or lines)."""
    text = reason.split(": ", 1)[1] if reason.startswith("/") and ": " in reason else reason
    for stop in (" (", ";"):
        text = text.split(stop, 1)[0]
    return text


def list_corpus(corpus: str, root: str | Path, labels=None) -> tuple[list[Clip], list]:
    """Dispatches to the reader of `corpus`; raises UserError when nothing usable is found.

    `labels` (csv only): the label list, in order; rows with another label are refused.
    """
    if corpus in ("ravdess", "cremad") and not Path(root).is_dir():
        raise UserError(f"--root '{root}' is not a folder; give the corpus's top folder")
    if corpus == "ravdess":
        found = list_ravdess(root)
    elif corpus == "cremad":
        found = list_cremad(root)
    elif corpus == "csv":
        found = list_csv(root, labels)
    else:
        raise UserError(f"--corpus '{corpus}' is not one of {', '.join(CORPORA)}")
    if labels and corpus != "csv":
        raise UserError(f"--labels is for --corpus csv; {corpus}'s labels are fixed")
    if not found[0]:
        kinds = collections.Counter(reason_kind(reason) for _, reason in found[1])
        why = "; ".join(f"{count} {kind}" for kind, count in kinds.most_common(3))
        raise UserError(
            f"no {corpus} clips found under '{root}' ({len(found[1])} files passed over{': ' + why if why else ''})"
        )
    return found


def label_names(corpus: str, clips: list[Clip], labels=None) -> tuple:
    """The label set in label order: the corpus's own, `labels` when given, else the clips' labels."""
    if labels:
        return tuple(labels)
    if corpus == "ravdess":
        return RAVDESS_LABELS
    if corpus == "cremad":
        return CREMAD_LABELS
    names = {}
    for clip in clips:
        names[clip.label] = clip.label_name
    return tuple(names[i] for i in sorted(names))


def list_folder_or_csv(path: str | Path) -> tuple[list[Clip], list, str]:
    """The clips of a folder or CSV to predict: `(clips, skipped, kind)`.

    A folder in a corpus's layout (every media file named as RAVDESS or
    CREMA-D names them) is read by that corpus's reader, so its clips carry
    their labels; any other folder gives every media file under it, without
    labels (kind "files"). A CSV needs a `path` column (relative to the CSV's
    folder); a `label` column, where present, labels its clips (kind "csv").
    Unlabelled clips have `label_name` "".

    Raises:
        UserError: naming the path: missing, a CSV without a `path` column or
            not UTF-8, or nothing usable in it.
    """
    path = Path(os.path.abspath(path))
    if path.is_dir():
        media, skipped = _media_files(path, lambda p: _ravdess_parts(p) or _cremad_parts(p))
        for corpus, reader in (("cremad", list_cremad), ("ravdess", list_ravdess)):
            clips, passed = reader(path)
            unparsed = [p for p, reason in passed if reason.startswith("name is not")]
            if clips and not unparsed:
                return clips, passed, corpus
        ids = _csv_clip_ids(media, path)
        clips = [Clip(str(p), clip_id, "files", "", -1, "") for p, clip_id in zip(media, ids)]
        if not clips:
            raise UserError(f"{path}: no media file in this folder ({len(skipped)} other files)")
        return clips, skipped, "files"
    if path.suffix.lower() != ".csv" or not path.is_file():
        raise UserError(
            f"{path}: not a folder or a CSV file; give a clip, a folder of clips or a CSV with a path column"
        )
    rows = _read_csv_rows(path, ("path",), "the first line must name path (and label, to score the clips)")
    usable, skipped, seen = [], [], {}
    for line, row in enumerate(rows, start=2):
        if not row["path"]:
            skipped.append((f"{path}:{line}", f"{path}:{line}: empty path"))
            continue
        clip_path = Path(row["path"])
        clip_path = Path(os.path.abspath(clip_path if clip_path.is_absolute() else path.parent / clip_path))
        if str(clip_path) in seen:
            skipped.append(
                (str(clip_path), f"{path}:{line}: the same file as line {seen[str(clip_path)]}; listed once")
            )
            continue
        seen[str(clip_path)] = line
        usable.append((clip_path, row.get("label", ""), row.get("subject", "")))
    ids = _csv_clip_ids([p for p, _, _ in usable], path.parent)
    names = sorted({label for _, label, _ in usable if label})
    clips = [
        Clip(str(p), clip_id, "csv", subject, names.index(label) if label else -1, label)
        for clip_id, (p, label, subject) in zip(ids, usable)
    ]
    if not clips:
        raise UserError(f"{path}: no clip listed (rows need a path)")
    return clips, skipped, "csv"
