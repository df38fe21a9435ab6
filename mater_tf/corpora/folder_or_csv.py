"""The clips to predict: a folder (in a corpus's layout, or any media files) or a CSV of paths."""

from __future__ import annotations

import os
from pathlib import Path

from mater_tf.corpora.clip import Clip
from mater_tf.corpora.cremad import cremad_parts, list_cremad
from mater_tf.corpora.csv_corpus import csv_clip_ids, read_csv_rows
from mater_tf.corpora.media_files import media_files
from mater_tf.corpora.ravdess import list_ravdess, ravdess_parts
from mater_tf.errors import UserError


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
        media, skipped = media_files(path, lambda p: ravdess_parts(p) or cremad_parts(p))
        for corpus, reader in (("cremad", list_cremad), ("ravdess", list_ravdess)):
            clips, passed = reader(path)
            unparsed = [p for p, reason in passed if reason.startswith("name is not")]
            if clips and not unparsed:
                return clips, passed, corpus
        ids = csv_clip_ids(media, path)
        clips = [Clip(str(p), clip_id, "files", "", -1, "") for p, clip_id in zip(media, ids)]
        if not clips:
            raise UserError(f"{path}: no media file in this folder ({len(skipped)} other files)")
        return clips, skipped, "files"
    if path.suffix.lower() != ".csv" or not path.is_file():
        raise UserError(
            f"{path}: not a folder or a CSV file; give a clip, a folder of clips or a CSV with a path column"
        )
    rows = read_csv_rows(path, ("path",), "the first line must name path (and label, to score the clips)")
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
    ids = csv_clip_ids([p for p, _, _ in usable], path.parent)
    names = sorted({label for _, label, _ in usable if label})
    clips = [
        Clip(str(p), clip_id, "csv", subject, names.index(label) if label else -1, label)
        for clip_id, (p, label, subject) in zip(ids, usable)
    ]
    if not clips:
        raise UserError(f"{path}: no clip listed (rows need a path)")
    return clips, skipped, "csv"
