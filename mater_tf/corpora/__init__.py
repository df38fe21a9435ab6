"""Corpus readers: list a corpus's clips with label and subject parsed from the names.

Each reader returns `(clips, skipped)`: the usable clips sorted by id, and
`(path, reason)` for every file it passed over (not media, a name it cannot
parse, another file of a clip already listed, a broken link, ...), so every
file seen is either a clip or recorded with its reason. Folders are walked
following symbolic links (each real folder once). Clip paths are absolute, so
the same corpus named by another path lists the same clips.

One module per corpus layout (`ravdess`, `cremad`, `csv_corpus`; each says
its label set), `media_files` for what they share (walking a folder, choosing
one file per clip), `registry` for the corpus names, and `folder_or_csv` for
the clips predict is given.
"""

from mater_tf.corpora.clip import Clip
from mater_tf.corpora.cremad import CREMAD_CODES, CREMAD_LABELS, list_cremad
from mater_tf.corpora.csv_corpus import list_csv
from mater_tf.corpora.folder_or_csv import list_folder_or_csv
from mater_tf.corpora.ravdess import RAVDESS_LABELS, list_ravdess
from mater_tf.corpora.registry import CORPORA, label_counts, label_names, list_corpus, reason_kind

__all__ = [
    "CORPORA",
    "CREMAD_CODES",
    "CREMAD_LABELS",
    "RAVDESS_LABELS",
    "Clip",
    "label_counts",
    "label_names",
    "list_corpus",
    "list_cremad",
    "list_csv",
    "list_folder_or_csv",
    "list_ravdess",
    "reason_kind",
]
