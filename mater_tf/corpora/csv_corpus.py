"""Any corpus: a CSV with columns path, label, subject (paths relative to the CSV's folder).

Labels: the sorted distinct labels of the CSV (or the list given with `label_names`: then a row
with another label is refused, naming its line); subject from its `subject` column. A clip's id
is its file name without the suffix, or, where two rows' files share that name, its path
relative to the CSV's folder.
"""

from __future__ import annotations

import codecs
import collections
import csv
import os
from pathlib import Path

from mater_tf.corpora.clip import Clip
from mater_tf.errors import UserError


def read_csv_rows(
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


def csv_clip_ids(paths: list[Path], folder: Path) -> list[str]:
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
    rows = read_csv_rows(csv_path)
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
    ids = csv_clip_ids([path for path, _, _ in usable], csv_path.parent)
    for clip_id, (path, subject, label) in zip(ids, usable):
        clips.append(Clip(str(path), clip_id, "csv", subject, names.index(label), label))
    return sorted(clips, key=lambda c: c.clip_id), skipped
