"""`mater-tf prepare`: a corpus of clips -> windowed-embedding TFRecords."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="decode clips, track faces, embed windows, write TFRecords (resumable)",
        description=(
            "Paper settings: RAVDESS --windows 8 --window-seconds 0.5 (or 16 x 0.25); "
            "CREMA-D --windows 6 --window-seconds 0.5 (or 12 x 0.25). Run it again after an "
            "interruption to finish the rest."
        ),
    )
    parser.add_argument("--corpus", required=True, choices=("ravdess", "cremad", "csv"))
    parser.add_argument("--root", type=Path, required=True, help="corpus folder (for csv: the CSV file)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the shards and manifest.json")
    parser.add_argument("--windows", type=int, default=8, help="T, windows per clip (default 8)")
    parser.add_argument(
        "--window-seconds", type=float, default=0.5, help="d, seconds per window (default 0.5)"
    )
    parser.add_argument("--modalities", default="audio,face", help="audio,face (default) or audio")
    parser.add_argument("--face-embedder", help="vggm:PATH(.mat|.keras) or keras:PATH[:LAYER]")
    parser.add_argument(
        "--audio-embedder", default="logmel", help="vggish:PATH or logmel (default; no pretrained weights)"
    )
    parser.add_argument(
        "--keep-log-mel",
        action="store_true",
        help="also store each window's log-mel patch and voice descriptors (for model.audio_frontend=small|vggish|stats "
        "and model.utterance_functionals)",
    )
    parser.add_argument(
        "--labels",
        help="csv only: the label list in order, e.g. anger,happy,sad (rows with another label are refused)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="clips decoded, and clips extracted (faces detected, tracked, embedded), in parallel (default 2)",
    )
    parser.add_argument("--clips-per-shard", type=int, default=64)
    parser.add_argument("--frame-side", type=int, default=640, help="longest side of decoded frames, px")
    parser.add_argument("--detect-side", type=int, default=320, help="longest side given to MTCNN, px")
    parser.add_argument(
        "--runner",
        choices=("local", "beam"),
        default="local",
        help="local: tf.data on this machine (default); beam: an Apache Beam pipeline (pip install "
        "'mater-tf[beam]'), on this machine's DirectRunner with --workers processes unless --beam-options "
        "names another runner",
    )
    parser.add_argument(
        "--beam-options",
        help="with --runner beam: Beam pipeline options, after an = sign (they begin with --), e.g. "
        '--beam-options="--runner=DataflowRunner --project=P --region=R --setup_file=./setup.py"',
    )
    parser.add_argument(
        "--detect-every",
        type=int,
        default=5,
        help="run MTCNN on every K-th frame of each window (and its last), interpolating the box "
        "between where the face is not lost; 1: every frame (default 5)",
    )
    parser.set_defaults(handler=run)


def _check_positive(args) -> None:
    from mater_tf.errors import UserError

    defaults = {"clips_per_shard": 64, "workers": 2, "frame_side": 640, "detect_side": 320, "detect_every": 5}
    for option, default in defaults.items():
        value = getattr(args, option)
        if value < 1:
            flag = "--" + option.replace("_", "-")
            raise UserError(f"{flag} {value} must be at least 1 (default {default})")


def label_summary(clips, names) -> str:
    """The label set with clip counts; a label with one clip, beside others with many, may be a typo."""
    from mater_tf.corpora import label_counts

    counts = label_counts(clips)
    text = ", ".join(f"{name} {counts.get(name, 0)}" for name in names)
    rare = [name for name in names if counts.get(name, 0) == 1] if len(clips) > 2 * len(names) else []
    hint = (
        f"; {', '.join(repr(r) for r in rare)} has a single clip: if it is a typo, pass --labels with the "
        "intended list"
        if rare
        else ""
    )
    return f"{len(names)} labels: {text}{hint}"


def run(args) -> int:
    import functools

    from mater_tf.corpora import label_names, list_corpus
    from mater_tf.data.extraction import build_extractor
    from mater_tf.media import require_media_packages

    _check_positive(args)
    if args.beam_options is not None and args.runner != "beam":
        from mater_tf.errors import UserError

        raise UserError("--beam-options is for --runner beam; add --runner beam or leave the options out")
    labels = [name.strip() for name in args.labels.split(",") if name.strip()] if args.labels else None
    clips, skipped = list_corpus(args.corpus, args.root, labels)
    modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    require_media_packages("face" in modalities, "mater-tf prepare")
    from pipelines.prepare import prepare

    build = functools.partial(
        build_extractor,
        args.windows,
        args.window_seconds,
        modalities,
        args.face_embedder,
        args.audio_embedder,
        args.frame_side,
        args.detect_side,
        args.keep_log_mel,
        detect_every=args.detect_every,
    )
    extractor, info = build()
    names = label_names(args.corpus, clips, labels)
    seen = "rows" if args.corpus == "csv" else "files"
    print(
        f"{len(clips)} {args.corpus} clips to prepare from {len(clips) + len(skipped)} {seen} seen "
        f"({len(skipped)} passed over) -> {args.out}"
    )
    from mater_tf.corpora.passed_over import passed_over_summary

    for line in passed_over_summary(skipped):
        print(line)
    print(label_summary(clips, names))
    if args.runner == "beam":
        import logging

        from pipelines.beam_prepare import prepare_with_beam

        if not args.verbose:  # Beam logs its workers' start, stop and set-up
            logging.getLogger("apache_beam").setLevel(logging.ERROR)

        manifest = prepare_with_beam(
            clips,
            skipped,
            build,
            extractor.windowing,
            args.out,
            args.corpus,
            names,
            info,
            clips_per_shard=args.clips_per_shard,
            beam_options=args.beam_options,
            workers=args.workers,
        )
    else:
        manifest = prepare(
            clips,
            skipped,
            extractor,
            args.out,
            args.corpus,
            names,
            info,
            clips_per_shard=args.clips_per_shard,
            workers=args.workers,
        )
    print(
        f"wrote {manifest['num_clips']} clips in {len(manifest['shards'])} shards; "
        f"{manifest['num_failed']} failed, {manifest['num_skipped_files']} {seen} passed over "
        f"(every one with its reason in {Path(args.out) / 'manifest.json'})"
    )
    if info["face"]:
        print(
            f"{manifest['num_no_face']} video clips with no face found (kept: every face window masked, "
            "the voice used; ids under no_face_clips in manifest.json)"
        )
    for clip_id, reason in list(manifest["failed"].items())[:5]:
        print(f"  failed {clip_id}: {reason}")
    # As predict: 1 when any clip failed (the others' records are written and usable), so a script
    # sees it; files passed over while listing the corpus (not media, unparsable names) do not count.
    return 1 if manifest["num_failed"] else 0
