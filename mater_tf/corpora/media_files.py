"""Finding a corpus's media files: walk a folder (following links), keep what FFmpeg can read,
and choose one file per clip; every other file seen is returned with its reason."""

from __future__ import annotations

import os
from pathlib import Path

from mater_tf.media import (
    AUDIO_SUFFIXES,
    MEDIA_EXTRA,
    VIDEO_SUFFIXES,
    MediaError,
    ffmpeg_suffixes,
    is_video,
    probe,
)


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


def media_files(root: Path, named=lambda path: False) -> tuple[list[Path], list]:
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


def prefer_video(candidates: dict[str, list[Path]]) -> tuple[dict[str, Path], list]:
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
