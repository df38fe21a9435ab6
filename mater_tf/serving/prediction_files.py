"""What predict writes per clip: a distinct output name for each clip (`output_names`, or
`live_name` for a stream), `<name>.json` (the result of `mater_tf.serving.clip_scoring`),
`<name>.csv` (its per-window timeline) and `<name>.png` (the timeline's picture)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np


def output_names(paths, reserved=()) -> dict[str, str]:
    """A distinct output name per clip path (keyed by `str(path)`): its file name without suffix,
    or, where clips share that name, preceded by as many of its folders as tell them apart
    (`a_clip`, `b_clip`), with the suffix where only that differs (`clip.mp4`, `clip.wav`).

    No name is one of `reserved` (the run's own files) or, ignoring case (macOS and Windows
    file systems), another clip's: such a name gets a folder too, or a count (`a_clip_2`).
    """
    import os

    resolved = {str(path): Path(os.path.abspath(path)) for path in paths}
    taken = {name.casefold() for name in reserved}
    names = {}
    for key, path in resolved.items():
        rivals = [other for other in set(resolved.values()) if other.stem == path.stem and other != path]
        name = next(
            (
                _candidate(path, depth, suffix)
                for suffix in (False, True)
                for depth in range(len(path.parent.parts) + 1)
                if all(
                    _candidate(other, depth, suffix) != _candidate(path, depth, suffix) for other in rivals
                )
                and _candidate(path, depth, suffix).casefold() not in taken
            ),
            path.stem,
        )
        unique, count = name, 1
        while unique.casefold() in taken:
            count += 1
            unique = f"{name}_{count}"
        taken.add(unique.casefold())
        names[key] = unique
    return names


def _candidate(path: Path, depth: int, suffix: bool) -> str:
    """The file name (with or without suffix) preceded by its last `depth` folders, joined with '_'."""
    folders = (
        [part.strip("/\\") for part in path.parent.parts[len(path.parent.parts) - depth :]] if depth else []
    )
    return "_".join([folder for folder in folders if folder] + [path.name if suffix else path.stem])


def live_name(source: str) -> str:
    """The output name of a live source (its file or device name, made safe)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(source)).stem or "live").strip("_") or "live"


def timeline_rows(result: dict) -> tuple[list[str], list[list]]:
    """The per-window timeline as CSV header and rows: start, end, fused emotion, fused / audio / face
    probabilities per label (empty where there is none), with a built-in's face channel the face
    expression's emotion and probabilities per class (shown beside the voice, not fused), face found,
    face frames found, frames."""
    labels, windows = result.get("labels", []), result.get("windows", [])
    header = ["start", "end", "emotion"]
    fields = [("probabilities", "fused"), ("audio_probabilities", "audio"), ("face_probabilities", "face")]
    fields = [(field, name) for field, name in fields if any(field in w for w in windows)]
    for _, name in fields:
        header += [f"{name}_{label}" for label in labels]
    face_labels = (result.get("face_expression") or {}).get("labels", [])
    if face_labels:
        header += ["face_expression"] + [f"face_expression_{label}" for label in face_labels]
    header += ["face_found", "face_frames_found", "frames"]
    rows = []
    for window in windows:
        row = [window["start"], window["end"], window["emotion"]]
        for field, _ in fields:
            row += window.get(field) or [""] * len(labels)
        if face_labels:
            expression = window.get("face_expression")
            best = face_labels[int(np.argmax(expression))] if expression else ""
            row += [best] + (expression or [""] * len(face_labels))
        row += [int(window["face_found"]), window["face_frames_found"], window["frames"]]
        rows.append(row)
    return header, rows


def write_prediction(result: dict, out_dir: str | Path, name: str | None = None) -> tuple[Path, Path, Path]:
    """Writes `<name>.json`, `<name>.csv` (the per-window timeline) and `<name>.png` into `out_dir`
    (name: the clip's file name without suffix by default; see `output_names` for several clips)."""
    import csv

    from mater_tf.reporting.timeline import timeline_png

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = name or Path(result["clip"]).stem
    json_path, csv_path, png_path = (out_dir / f"{stem}.{suffix}" for suffix in ("json", "csv", "png"))
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    header, rows = timeline_rows(result)
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    png_path.write_bytes(timeline_png(result))
    return json_path, csv_path, png_path
