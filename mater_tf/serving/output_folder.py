"""The folder predict writes into (`--out`): the names that are the run's own, the marker that
says predict wrote the folder, and the check made before any work, so that predict replaces only
files it wrote (unless told to)."""

from __future__ import annotations

from pathlib import Path

from mater_tf.errors import UserError

# index.html: the clips linked to their pages; passed_over.csv: the files of a folder that are not clips
RUN_FILES = ("summary", "score", "confusion", "index", "passed_over")
OUT_SUFFIXES = ("json", "csv", "png", "html")  # what write_prediction and the run write per name
OUT_MARKER = ".mater-tf-predict"  # in every --out predict writes: its own files may be replaced


def check_out(out: Path, stems, overwrite: bool) -> None:
    """Checks `--out` before any work: a file there, or files of a name predict would write in a
    folder it did not write (no `OUT_MARKER`), are refused, the latter unless `overwrite`."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: a file, not a folder, is there; choose a folder")
    if out.is_dir() and not overwrite and not (out / OUT_MARKER).is_file():
        mine = {f"{stem}.{suffix}" for stem in stems for suffix in OUT_SUFFIXES}
        taken = sorted(child.name for child in out.iterdir() if child.name in mine)
        if taken:
            more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
            raise UserError(
                f"--out {out}: holds {taken[0]}{more}, which mater-tf predict did not write and would "
                "replace; choose another folder, or pass --overwrite to replace them"
            )


def mark_out(out: Path) -> None:
    """Makes `--out` (refused in one line when it cannot be written) and marks it as predict's."""
    from mater_tf.data.records import make_out_dir

    make_out_dir(out)
    (out / OUT_MARKER).write_text("Results of mater-tf predict: it may replace its own files here.\n")
