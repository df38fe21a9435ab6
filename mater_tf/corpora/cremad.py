"""CREMA-D: `ACTOR_SENTENCE_EMOTION_LEVEL` file names (VideoFlash/, AudioWAV/, AudioMP3/).

Labels: anger, disgust, fear, happy, neutral, sad (codes ANG DIS FEA HAP NEU SAD). Subject =
actor id "1001".."1091".
"""

from __future__ import annotations

from pathlib import Path

from mater_tf.corpora.clip import Clip
from mater_tf.corpora.media_files import media_files, prefer_video

CREMAD_CODES = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
CREMAD_LABELS = ("anger", "disgust", "fear", "happy", "neutral", "sad")


def cremad_parts(path: Path) -> list[str] | None:
    """The four parts of a CREMA-D file name, or None where it is not one."""
    parts = path.stem.split("_")
    return parts if len(parts) == 4 and parts[0].isdigit() else None


def list_cremad(root: str | Path) -> tuple[list[Clip], list]:
    """CREMA-D `ACTOR_SENTENCE_EMOTION_LEVEL` files (VideoFlash/, AudioWAV/, AudioMP3/)."""
    candidates = {}
    media, skipped = media_files(root, cremad_parts)
    for path in media:
        parts = cremad_parts(path)
        if parts is None:
            skipped.append((str(path), "name is not a CREMA-D ACTOR_SENTENCE_EMOTION_LEVEL code"))
            continue
        if parts[2] not in CREMAD_CODES:
            skipped.append(
                (str(path), f"unknown CREMA-D emotion '{parts[2]}' (expected {', '.join(CREMAD_CODES)})")
            )
            continue
        candidates.setdefault(path.stem, []).append(path)
    chosen, duplicates = prefer_video(candidates)
    clips = []
    for clip_id, path in sorted(chosen.items()):
        parts = clip_id.split("_")
        label = CREMAD_CODES.index(parts[2])
        clips.append(Clip(str(path), clip_id, "cremad", parts[0], label, CREMAD_LABELS[label]))
    return clips, skipped + duplicates
