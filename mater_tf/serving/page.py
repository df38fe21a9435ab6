"""The pages `mater-tf predict` writes: `<clip>.html`, the clip's timeline playing under its media,
and `index.html`, the run's clips in one sortable table.

Each page is one self-contained file that works offline, opened from disk: its script and style
are inline (`page_templates/`), nothing is fetched, and the media is referenced by a path relative
to the page (or copied beside it). A clip page embeds the clip's result once, the very dict
written as `<clip>.json`, and its script draws everything from it; what the page adds is how
to show it (the media, a built-in model's card, an audio file's waveform).

A clip page reads its address: `<clip>.html#t=12.5` opens at 12.5 s, `#w=3` at the fourth window.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from urllib.parse import quote

TEMPLATES = Path(__file__).resolve().parent / "page_templates"
WAVEFORM_POINTS = 2000  # peaks drawn under an audio player: enough for a screen's width


def embed_json(value) -> str:
    """JSON that can stand inside a <script> element: no '<' can close it or open a comment."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def _fill(template: str, **parts: str) -> str:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    for key, value in parts.items():
        text = text.replace(f"@@{key}@@", value)
    return text


def model_description(predictor) -> dict:
    """What the page says the model is: its name, what kind, its modalities and, for a built-in,
    its checksum and card (and its face channel's)."""
    from mater_tf import builtin

    modalities = list(predictor.modalities)
    if predictor.builtin is None:
        return {
            "name": str(predictor.export_dir),
            "what": "a trained run's export (mater-tf train / export)",
            "modalities": modalities,
            "cards": [],
        }
    names = [predictor.builtin.name] + ([predictor.builtin.face_channel] if predictor.face_expression else [])
    return {
        "name": predictor.builtin.name,
        "what": "a built-in model, shipped inside mater-tf (mater-tf models "
        f"{predictor.builtin.name} prints its card)",
        "sha256": predictor.builtin.sha256,
        "modalities": modalities,
        "cards": [{"title": f"card: {name}", "text": builtin.card_markdown(name)} for name in names],
    }


def _waveform(path: Path) -> list[float] | None:
    """Peak per slice of the audio, for the waveform under an audio player (None if undecodable)."""
    import numpy as np

    from mater_tf.media import MediaError, decode_audio

    try:
        samples = np.abs(decode_audio(path))
    except MediaError as error:
        logging.getLogger(__name__).debug("no waveform for %s: %s", path, error)
        return None
    if not len(samples):
        return None
    slices = np.array_split(samples, min(WAVEFORM_POINTS, len(samples)))
    peaks = np.array([piece.max() for piece in slices])
    return [round(float(p), 3) for p in peaks / max(float(peaks.max()), 1e-9)]


def _media(result: dict, out_dir: Path, name: str, media, copy_media: bool) -> tuple[dict | None, str]:
    """(the page's media: element kind, relative address, waveform; or None, the note said instead)."""
    from mater_tf.media import is_video

    if result.get("live") and not (media and Path(media).is_file()):
        return (
            None,
            f"a live stream ({result['clip']}): no recording to play; the timeline shows what was read",
        )
    path = Path(media if media is not None else result["clip"])
    if not path.is_file():
        return None, f"{path}: not found; the timeline below is the prediction"
    if copy_media:
        copied = out_dir / f"{name}{path.suffix.lower()}"
        if not (copied.exists() and os.path.samefile(path, copied)):
            shutil.copyfile(path, copied)
        path = copied
    try:
        relative = os.path.relpath(path.resolve(), out_dir.resolve())
        source = quote(Path(relative).as_posix())
    except ValueError:  # another drive (Windows): only an absolute address reaches it
        source = path.resolve().as_uri()
    video = is_video(path)
    return {
        "kind": "video" if video else "audio",
        "src": source,
        "waveform": None if video else _waveform(path),
    }, ""


def write_page(
    result: dict,
    out_dir: str | Path,
    name: str,
    model: dict,
    media: str | Path | None = None,
    copy_media: bool = False,
) -> Path:
    """Writes `<name>.html` beside the clip's JSON: its media, its timeline and the model.

    Args:
        result: the clip's result, as written to `<name>.json` (embedded as is).
        out_dir: the output folder.
        name: the clip's output name (`output_names`).
        model: `model_description(predictor)`.
        media: the clip's file (default: `result["clip"]`); the page refers to it by a relative path.
        copy_media: copy the media beside the page (`<name><suffix>`), so the folder travels alone.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    player, note = _media(result, out_dir, name, media, copy_media)
    modalities = model.get("modalities") or []
    page = {
        "name": name,
        "media": player,
        "media_note": note,
        "model": model,
        # A voice model's emotion is the voice's; only a model of several modalities fuses them.
        "fused_name": "fused emotion" if len(modalities) > 1 else "emotion",
    }
    path = out_dir / f"{name}.html"
    path.write_text(
        _fill("clip.html", TITLE=_escape(name), PREDICTION=embed_json(result), PAGE=embed_json(page)),
        encoding="utf-8",
    )
    return path


def write_index(out_dir: str | Path, rows: list[dict], score: dict | None = None) -> Path:
    """Writes `index.html`: the summary's rows (summary.csv's), each linked to its clip page, and
    the score on the labelled clips where there is one (`score.json`'s)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = [{**row, "page": f"{quote(row['clip'])}.html" if not row.get("error") else None} for row in rows]
    path = out_dir / "index.html"
    path.write_text(
        _fill("index.html", SUMMARY=embed_json({"rows": clips, "score": score})), encoding="utf-8"
    )
    return path


def _escape(text: str) -> str:
    import html

    return html.escape(text)
