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

This module reads the command line and checks it; the work is in `mater_tf.serving`
(`clip_listing`, `output_folder`, `predict_clips`, `predict_live`).
"""

from __future__ import annotations

from pathlib import Path

from mater_tf.errors import UserError


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
    from mater_tf.serving.output_folder import RUN_FILES, check_out, mark_out
    from mater_tf.serving.predictor import Predictor

    if args.stride < 1:
        raise UserError(f"--stride {args.stride}: give a positive number of windows (1 = every window)")
    if args.live and args.inputs:
        raise UserError("--live reads one stream: give either --live SOURCE or clips, not both")
    if not args.live and not args.inputs:
        raise UserError("give clips, folders or CSVs to predict, or --live SOURCE")
    if args.live_format:
        _check_live_format(args.live_format)
    if args.live:
        from mater_tf.serving.prediction_files import live_name

        clips, stems = None, [live_name(args.live)]
    else:
        from mater_tf.serving.clip_listing import collect_clips
        from mater_tf.serving.prediction_files import output_names

        clips = collect_clips(args.inputs)
        stems = list(output_names([clip.path for clip in clips[0]], reserved=RUN_FILES).values())
    check_out(args.out, stems + list(RUN_FILES), args.overwrite)
    predictor = Predictor(args.model, args.audio_embedder, args.face_embedder)
    require_media_packages("face" in predictor.modalities, "mater-tf predict")
    if predictor.builtin is not None:
        from mater_tf.serving.result_lines import builtin_line

        print(builtin_line(predictor))
    if args.stride > predictor.metadata["num_windows"]:
        # Windows between inputs would get no probabilities at all (no timeline, no picture).
        raise UserError(
            f"--stride {args.stride}: longer than the model's {predictor.metadata['num_windows']}-window "
            f"input, so some windows would never be scored; give 1 to {predictor.metadata['num_windows']}"
        )
    mark_out(args.out)
    if args.live:
        from mater_tf.serving.predict_live import predict_live

        return predict_live(predictor, args.live, args.out, args.realtime, args.live_format, args.copy_media)
    from mater_tf.serving.predict_clips import predict_clips

    return predict_clips(predictor, *clips, args.out, args.stride, args.copy_media, args.inputs)


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
