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
        help="also store each window's log-mel patch (for model.audio_frontend=small|vggish)",
    )
    parser.add_argument("--workers", type=int, default=2, help="clips decoded in parallel (default 2)")
    parser.add_argument("--clips-per-shard", type=int, default=64)
    parser.add_argument("--frame-side", type=int, default=640, help="longest side of decoded frames, px")
    parser.add_argument("--detect-side", type=int, default=320, help="longest side given to MTCNN, px")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from mater_tf.corpora import label_names, list_corpus
    from mater_tf.extraction import build_extractor
    from pipelines.prepare import prepare

    clips, skipped = list_corpus(args.corpus, args.root)
    modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    extractor, info = build_extractor(
        args.windows,
        args.window_seconds,
        modalities,
        args.face_embedder,
        args.audio_embedder,
        args.frame_side,
        args.detect_side,
        args.keep_log_mel,
    )
    print(f"{len(clips)} {args.corpus} clips to prepare ({len(skipped)} files passed over) -> {args.out}")
    manifest = prepare(
        clips,
        skipped,
        extractor,
        args.out,
        args.corpus,
        label_names(args.corpus, clips),
        info,
        clips_per_shard=args.clips_per_shard,
        workers=args.workers,
    )
    print(
        f"wrote {manifest['num_clips']} clips in {len(manifest['shards'])} shards; "
        f"{manifest['num_failed']} failed (reasons in {Path(args.out) / 'manifest.json'})"
    )
    if info["face"]:
        print(
            f"{manifest['num_no_face']} video clips with no face found (kept: every face window masked, "
            "the voice used; ids under no_face_clips in manifest.json)"
        )
    for clip_id, reason in list(manifest["failed"].items())[:5]:
        print(f"  failed {clip_id}: {reason}")
    return 0
