"""RAVDESS: `MM-VV-EE-II-SS-RR-AA` file names, in any of the corpus's released layouts.

Labels (RAVDESS emotion codes 01-08): neutral, calm, happy, sad, angry, fearful, disgust,
surprised. Speech only (vocal channel 01), as in the paper; song files are skipped. Subject =
actor "01".."24" (odd = male).
"""

from __future__ import annotations

from pathlib import Path

from mater_tf.corpora.clip import Clip
from mater_tf.corpora.media_files import media_files, prefer_video

RAVDESS_LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def ravdess_parts(path: Path) -> list[str] | None:
    """The seven codes of a RAVDESS file name, or None where it is not one."""
    parts = path.stem.split("-")
    return parts if len(parts) == 7 and all(p.isdigit() for p in parts) else None


def list_ravdess(root: str | Path) -> tuple[list[Clip], list]:
    """RAVDESS `MM-VV-EE-II-SS-RR-AA` files under `root` (any of its released layouts)."""
    candidates = {}
    media, skipped = media_files(root, ravdess_parts)
    for path in media:
        parts = ravdess_parts(path)
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
    chosen, duplicates = prefer_video(candidates)
    clips = []
    for _, path in sorted(chosen.items()):
        parts = path.stem.split("-")
        label = int(parts[2]) - 1
        clips.append(Clip(str(path), path.stem, "ravdess", parts[6], label, RAVDESS_LABELS[label]))
    return clips, skipped + duplicates
