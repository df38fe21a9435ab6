"""The clip a corpus reader lists: its file, id, corpus, subject and label."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Clip:
    """One clip to prepare."""

    path: str
    clip_id: str
    corpus: str
    subject: str
    label: int
    label_name: str
