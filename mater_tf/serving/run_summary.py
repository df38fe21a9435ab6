"""The files of a predict run as a whole: `summary.csv` (one row per clip, skipped clips with
their reason), `score.json` and `confusion.png` (a score on the labelled clips given, not a
held-out estimate) and `passed_over.csv` (the files of a folder that are not clips)."""

from __future__ import annotations

import csv
from pathlib import Path


def summary_row(clip, name, result, error, predictor) -> dict:
    """A clip's row of `summary.csv`: its name, path, label, error, emotions and probabilities
    (fused and per modality), and its timing (empty where it failed)."""
    labels = predictor.metadata["label_names"]
    row = {"clip": name, "path": clip.path, "label": clip.label_name, "error": error}
    fields = [("", "probabilities")] + [(f"{m}_", f"{m}_probabilities") for m in predictor.modalities]
    for prefix, field in fields:
        probabilities = (result or {}).get(field) or {}
        row[f"{prefix}emotion"] = (result or {}).get(f"{prefix}emotion") or ""
        for label in labels:
            row[f"{prefix or 'fused_'}{label}"] = probabilities.get(label, "")
    for key in ("duration", "num_windows", "face_found_rate", "seconds", "realtime_factor"):
        value = (result or {}).get(key)
        row["windows" if key == "num_windows" else key] = "" if value is None else value
    return row


def write_summary(out_dir: Path, rows: list[dict], labels) -> Path:
    """Writes `summary.csv`: the rows, with a column for every key any row has (first seen first)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.csv"
    header = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_score(out_dir: Path, scored: list[tuple[str, str]], labels, clips: int) -> dict | None:
    """Accuracy and confusion matrix over the labelled clips whose label the model knows: writes
    and returns score.json's content (None when no clip's label is the model's)."""
    import json

    import numpy as np

    from mater_tf.reporting.plots import confusion_matrix_png

    labels = list(labels)
    known = [(truth, guess) for truth, guess in scored if truth in labels]
    unknown = sorted({truth for truth, _ in scored if truth not in labels})
    if unknown:
        print(
            f"mater-tf predict: {len(scored) - len(known)} labelled clips not scored: their labels "
            f"({', '.join(unknown)}) are not among the model's ({', '.join(labels)})"
        )
    if not known:
        return None
    matrix = np.zeros((len(labels), len(labels)), np.int64)
    for truth, guess in known:
        matrix[labels.index(truth), labels.index(guess)] += 1
    correct = int(np.trace(matrix))
    scope = (
        f"a score on these {len(known)} labelled clips only (the clips given, not a held-out test set; "
        "clips the model trained on would score too high)"
    )
    score = {
        "scope": scope,
        "clips": len(known),
        "accuracy": round(correct / len(known), 4),
        "correct": correct,
        "labels": labels,
        "confusion_matrix": matrix.tolist(),
        "confusion_rows": "true label",
        "confusion_columns": "predicted (clip emotion)",
    }
    (out_dir / "score.json").write_text(json.dumps(score, indent=2) + "\n")
    (out_dir / "confusion.png").write_bytes(
        confusion_matrix_png(matrix, labels, f"score on these {len(known)} clips (not a held-out test)")
    )
    print(
        f"Score on these {len(known)} labelled clips (not a held-out estimate): accuracy "
        f"{correct / len(known):.3f} ({correct}/{len(known)}) -> {out_dir / 'score.json'}, confusion.png"
    )
    return score


def write_passed_over(out_dir: Path, skipped: list) -> str:
    """The files passed over, counted by reason with an example each (as prepare prints them);
    every one with its reason in `passed_over.csv` (a folder linking to /usr passes over 100,000)."""
    from mater_tf.corpora.passed_over import passed_over_summary

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "passed_over.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "reason"])
        writer.writerows(skipped)
    lines = passed_over_summary(skipped)
    return "\n".join(
        [f"mater-tf predict: {len(skipped)} files passed over (each with its reason: {path})", *lines]
    )
