"""`mater-tf predict`: whole clips, folders or CSVs of clips, or a live stream, scored window by window.

    mater-tf predict VIDEO [VIDEO|FOLDER|CSV ...] [--model NAME|DIR] [--out DIR] [--stride N]
    mater-tf predict --live SOURCE [--model NAME|DIR] [--realtime] [--live-format FMT]

With no `--model`, the default built-in model (`mater-tf models`); `--model NAME`
picks a built-in, a path a run or an export. A built-in voice model shows the
face's expression beside the voice where a video shows a face (not fused).

Per clip: `<name>.json` (clip emotion with its rule, per-modality scores, per-window timeline,
segments, attention), `<name>.csv` (the timeline), `<name>.png` and `<name>.html` (the timeline
playing under the clip, `mater_tf.serving.page`); for every run `summary.csv` (one row per clip,
skipped clips with their reason) and, for clips with labels the model knows, `score.json` and
`confusion.png`: a score on those clips, not a held-out estimate; for several clips (a folder, a
CSV) `index.html`, the summary linked to the clip pages.
"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

from mater_tf.errors import UserError

# index.html: the clips linked to their pages; passed_over.csv: the files of a folder that are not clips
RUN_FILES = ("summary", "score", "confusion", "index", "passed_over")
OUT_SUFFIXES = ("json", "csv", "png", "html")  # what write_prediction and the run write per name
OUT_MARKER = ".mater-tf-predict"  # in every --out predict writes: its own files may be replaced


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="the emotion of whole clips, folders of clips or a live stream, window by window",
        description=(
            "Extracts each clip exactly as the model's training records were prepared and slides the "
            "model's T-window input over the whole clip."
        ),
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        metavar="CLIP_FOLDER_OR_CSV",
        help="media files (any mp4/flv/mkv/wav/mp3...), folders of clips, or CSVs with a path column",
    )
    parser.add_argument(
        "--model",
        help="a built-in model's name (default: the default built-in, see mater-tf models), a run folder or "
        "an export folder",
    )
    parser.add_argument("--out", type=Path, default=Path("predictions"), help="where to write the results")
    parser.add_argument(
        "--stride", type=int, default=1, help="windows between the starts of the model's inputs (default 1)"
    )
    parser.add_argument(
        "--copy-media",
        action="store_true",
        help="copy each clip beside its page (the folder then travels alone)",
    )
    parser.add_argument("--live", metavar="SOURCE", help="a stream FFmpeg opens: URL, device or file")
    parser.add_argument(
        "--realtime", action="store_true", help="read a file at its own pace, as a live source delivers it"
    )
    parser.add_argument(
        "--live-format", help="FFmpeg input format of a --live device (v4l2, avfoundation, dshow)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files in --out that mater-tf predict did not write (it marks its own folders)",
    )
    parser.add_argument("--audio-embedder", help="override the recorded audio embedder spec (moved weights)")
    parser.add_argument("--face-embedder", help="override the recorded face embedder spec (moved weights)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from mater_tf.media import require_media_packages
    from mater_tf.serving.predictor import Predictor

    if args.stride < 1:
        raise UserError(f"--stride {args.stride}: give a positive number of windows (1 = every window)")
    if args.live and args.inputs:
        raise UserError("--live reads one stream: give either --live SOURCE or clips, not both")
    if not args.live and not args.inputs:
        raise UserError("give clips, folders or CSVs to predict, or --live SOURCE")
    if args.live_format:
        _check_live_format(args.live_format)
    clips = None if args.live else collect_clips(args.inputs)
    if args.live:
        stems = [_live_name(args.live)]
    else:
        from mater_tf.serving.predictor import output_names

        stems = list(output_names([clip.path for clip in clips[0]], reserved=RUN_FILES).values())
    check_out(args.out, stems + list(RUN_FILES), args.overwrite)
    predictor = Predictor(args.model, args.audio_embedder, args.face_embedder)
    require_media_packages("face" in predictor.modalities, "mater-tf predict")
    if predictor.builtin is not None:
        print(_builtin_line(predictor))
    if args.stride > predictor.metadata["num_windows"]:
        # Windows between inputs would get no probabilities at all (no timeline, no picture).
        raise UserError(
            f"--stride {args.stride}: longer than the model's {predictor.metadata['num_windows']}-window "
            f"input, so some windows would never be scored; give 1 to {predictor.metadata['num_windows']}"
        )
    mark_out(args.out)
    if args.live:
        return run_live(args, predictor)
    return run_clips(args, predictor, *clips)


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


def _live_name(source: str) -> str:
    """The output name of a live source (its file or device name, made safe)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(source)).stem or "live").strip("_") or "live"


def _check_live_format(name: str) -> None:
    """Refuses an input format this FFmpeg (PyAV's) does not have, before the model loads."""
    import difflib

    import av

    if name not in av.formats_available:
        close = difflib.get_close_matches(name, sorted(av.formats_available), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UserError(
            f"--live-format {name}: not an input format of this FFmpeg (PyAV {av.__version__}); {hint}devices "
            "are v4l2 (Linux), avfoundation (macOS) or dshow (Windows) where FFmpeg was built with them; "
            "leave it out for files and URLs"
        )


def _builtin_line(predictor) -> str:
    """Which built-in model predicts, its checksum and where its card is."""
    model = predictor.builtin
    line = (
        f"model: {model.name} (built-in, sha256 {model.sha256[:12]}; its card: mater-tf models {model.name})"
    )
    if predictor.face_expression is not None:
        line += (
            f"; where a video shows a face, {predictor.face_expression.model_name} reads it beside the "
            "voice (shown side by side, not fused)"
        )
    return line


def collect_clips(inputs) -> tuple[list, list]:
    """(clips, skipped) from the command line: files as given, folders and CSVs by `list_folder_or_csv`."""
    import os

    from mater_tf.corpora import Clip, list_folder_or_csv

    clips, skipped, seen = [], [], {}
    for given in inputs:
        if given.is_dir() or given.suffix.lower() == ".csv":
            found, passed, kind = list_folder_or_csv(given)
            labelled = sum(1 for clip in found if clip.label_name)
            print(f"{given}: {len(found)} clips ({kind}{f', {labelled} labelled' if labelled else ''})")
            skipped += passed
        else:
            found = [Clip(str(given), given.stem, "files", "", -1, "")]
        for clip in found:
            key = os.path.realpath(clip.path)
            if key in seen:
                print(f"mater-tf predict: {clip.path} is the same file as {seen[key]}; predicted once")
                continue
            seen[key] = clip.path
            clips.append(clip)
    return clips, skipped


def _line(result: dict) -> str:
    modalities = ", ".join(
        f"{m} {result[f'{m}_emotion']}" if result[f"{m}_emotion"] else "no face"
        for m in ("audio", "face")
        if f"{m}_emotion" in result
    )
    verdict = f"{result['emotion']} ({result['probabilities'][result['emotion']]:.2f})"
    if "face_expression" in result:  # a voice model, the face beside it
        face = result["face_expression"]
        return f"voice {verdict}; {_face_words(face['emotion'], face['probabilities'], result['frames_decoded'])}"
    return f"{verdict}; {modalities}"


def _face_words(emotion, probabilities, frames: int) -> str:
    """The face channel's words: its emotion beside the voice's, never fused with it."""
    if not emotion:
        return "face: no face" if frames else "face: no video"
    return f"face {emotion} ({probabilities[emotion]:.2f}, beside the voice, not fused)"


def run_clips(args, predictor, clips, skipped) -> int:
    from mater_tf.media import MediaError
    from mater_tf.serving.page import model_description, write_index, write_page
    from mater_tf.serving.predictor import output_names, write_prediction

    # summary.csv, score.json and confusion.png are the run's own: no clip's timeline takes those names.
    names = output_names([clip.path for clip in clips], reserved=RUN_FILES)
    rows, scored, failures, model = [], [], 0, model_description(predictor)
    started, media_seconds, busy = time.time(), 0.0, 0.0
    try:
        for done, clip in enumerate(clips, start=1):
            try:
                result = predictor.predict(clip.path, stride=args.stride)
            except MediaError as error:
                print(f"mater-tf predict: skipped {error}")
                rows.append(summary_row(clip, names[clip.path], None, str(error), predictor))
                failures += 1
                continue
            json_path, csv_path, png_path = write_prediction(result, args.out, names[clip.path])
            html_path = write_page(result, args.out, names[clip.path], model, clip.path, args.copy_media)
            media_seconds += result["duration"]
            busy += result["seconds"]
            rows.append(summary_row(clip, names[clip.path], result, "", predictor))
            if clip.label_name:
                scored.append((clip.label_name, result["emotion"]))
            rate = done / max(time.time() - started, 1e-9)
            progress = (
                f" [{done}/{len(clips)}, ETA {(len(clips) - done) / rate:.0f} s]" if len(clips) > 1 else ""
            )
            print(
                f"{clip.path}: {_line(result)}; {result['num_windows']} windows over "
                f"{result['duration']:.1f} s in {result['seconds']:.1f} s (real-time factor "
                f"{result['realtime_factor']:.2f}) -> {json_path}, {csv_path.name}, {png_path.name}, "
                f"{html_path.name}{progress}",
                flush=True,
            )
    finally:
        # Written however the run ends (Ctrl-C, a failure): the clips finished so far stay listed.
        summary = write_summary(args.out, rows, predictor.metadata["label_names"]) if rows else None
    if skipped:
        print(_passed_over(args.out, skipped))
    if media_seconds:
        print(
            f"{len(clips) - failures} clips, {media_seconds:.1f} s of media in {busy:.1f} s "
            f"(real-time factor {busy / media_seconds:.2f}); summary: {summary}"
        )
    score = write_score(args.out, scored, predictor.metadata["label_names"], len(rows)) if scored else None
    if rows and (
        len(rows) > 1 or any(given.is_dir() or given.suffix.lower() == ".csv" for given in args.inputs)
    ):
        print(f"the clips, linked to their pages: {write_index(args.out, rows, score)}")
    if not clips:
        raise UserError("no clip to predict (reasons above)")
    if failures == len(clips):
        print("mater-tf predict: no clip could be predicted (reasons above)")
    # The rule prepare follows too (docs/prepare.md, "Exit codes"): 1 when any clip failed, however many.
    return 1 if failures else 0


def _passed_over(out_dir: Path, skipped: list) -> str:
    """The files passed over, counted by reason with an example each (as prepare prints them);
    every one with its reason in `passed_over.csv` (a folder linking to /usr passes over 100,000)."""
    from mater_tf.cli.prepare import passed_over_summary

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


def summary_row(clip, name, result, error, predictor) -> dict:
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


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes):02d}:{secs:04.1f}"


def run_live(args, predictor) -> int:
    import threading

    from mater_tf.features.expression import FACE_LABELS
    from mater_tf.media import MediaError
    from mater_tf.media.stream import read_ahead
    from mater_tf.serving.page import model_description, write_page
    from mater_tf.serving.predictor import write_prediction

    labels = predictor.metadata["label_names"]
    predictor.warm_up()
    stop = threading.Event()
    windows = read_ahead(
        predictor.windows(args.live, args.realtime, args.live_format, stop.is_set, live=True), stop
    )
    outputs = []

    def show(window, segment):
        now = time.monotonic()
        reference = window.due_at if window.due_at is not None else window.completed_at
        probabilities = segment["probabilities"]
        best = max(range(len(labels)), key=probabilities.__getitem__)
        parts = [
            f"{_clock(window.start)}-{_clock(window.start + window.inside)} {labels[best]} {probabilities[best]:.2f}"
        ]
        for modality in ("audio", "face"):
            scores = segment.get(f"{modality}_probabilities")
            if f"{modality}_probabilities" in segment and modality in predictor.modalities:
                if scores is None:
                    parts.append(f"{modality}: no face")
                else:
                    top = max(range(len(labels)), key=scores.__getitem__)
                    parts.append(f"{modality} {labels[top]} {scores[top]:.2f}")
        if "face_expression" in segment:
            expression = segment["face_expression"] or []
            top = FACE_LABELS[max(range(len(expression)), key=expression.__getitem__)] if expression else None
            parts.append(_face_words(top, dict(zip(FACE_LABELS, expression)), len(window.frame_times)))
        latency = now - reference
        parts.append(f"{latency:.2f} s after its end")
        print(" | ".join(parts), flush=True)
        outputs.append(
            {
                "index": window.index,
                "first_window": segment["first_window"],
                "windows": segment["windows"],
                "emotion": labels[best],
                "probabilities": probabilities,
                "audio_probabilities": segment.get("audio_probabilities"),
                "face_probabilities": segment.get("face_probabilities"),
                **({"face_expression": segment["face_expression"]} if "face_expression" in segment else {}),
                "latency": round(latency, 4),
                "processing": round(now - window.completed_at, 4),
            }
        )

    print(f"reading {args.live} (Ctrl-C ends and writes the timeline)", flush=True)
    try:
        result = predictor.predict(
            args.live, windows=windows, block_windows=1, on_window=show, interruptible=True
        )
    except MediaError as error:
        raise UserError(str(error)) from None
    result["live"] = {
        "source": args.live,
        "realtime": bool(args.realtime),
        "latency": "seconds from the window's end (realtime: on the media clock; live: its data read) to its line",
        "outputs": outputs,
    }
    name = _live_name(args.live)
    json_path, csv_path, png_path = write_prediction(result, args.out, name)
    html_path = write_page(result, args.out, name, model_description(predictor), args.live, args.copy_media)
    latencies = [o["latency"] for o in outputs]
    ended = "stopped by Ctrl-C; " if result.get("interrupted") else ""
    # A Ctrl-C can land after a window is read and before its line: then no latency to report.
    timing = (
        f"latency after each window's end mean {sum(latencies) / len(latencies):.2f} s, "
        f"max {max(latencies):.2f} s"
        if latencies
        else "no window line printed"
    )
    print(
        f"{ended}{result['num_windows']} windows: {_line(result)}; {timing} -> {json_path}, "
        f"{csv_path.name}, {png_path.name}, {html_path.name}"
    )
    return 0
