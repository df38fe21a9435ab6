"""The corpus names and their readers: `list_corpus` lists a named corpus, `label_names` gives
its label set, and `label_counts` / `reason_kind` summarise what a listing found."""

from __future__ import annotations

import collections
from pathlib import Path

from mater_tf.corpora.clip import Clip
from mater_tf.corpora.cremad import CREMAD_LABELS, list_cremad
from mater_tf.corpora.csv_corpus import list_csv
from mater_tf.corpora.ravdess import RAVDESS_LABELS, list_ravdess
from mater_tf.errors import UserError

CORPORA = ("ravdess", "cremad", "csv")


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
