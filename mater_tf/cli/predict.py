"""`mater-tf predict CLIP... --model DIR`: emotion, per-window scores, attention and a timeline per clip."""

from __future__ import annotations

from pathlib import Path

from mater_tf.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict the emotion of raw clips (any mp4/flv/wav/mp3) with a trained model",
        description="Extracts each clip exactly as the model's training records were prepared.",
    )
    parser.add_argument("clips", nargs="+", type=Path, metavar="CLIP")
    parser.add_argument("--model", type=Path, required=True, help="a run folder or an export folder")
    parser.add_argument("--out", type=Path, default=Path("predictions"), help="where to write JSON and PNG")
    parser.add_argument("--audio-embedder", help="override the recorded audio embedder spec (moved weights)")
    parser.add_argument("--face-embedder", help="override the recorded face embedder spec (moved weights)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    import os

    from mater_tf.media import MediaError, require_media_packages
    from mater_tf.serving.predictor import Predictor, output_names, write_prediction

    clips, seen = [], {}
    for clip in args.clips:
        key = os.path.realpath(clip)
        if key in seen:
            print(f"mater-tf predict: {clip} is the same file as {seen[key]}; predicted once")
            continue
        seen[key] = clip
        clips.append(clip)
    names = output_names(clips)
    predictor = Predictor(args.model, args.audio_embedder, args.face_embedder)
    require_media_packages("face" in predictor.modalities, "mater-tf predict")
    failures = 0
    for clip in clips:
        try:
            result = predictor.predict(clip)
        except MediaError as error:
            print(f"mater-tf predict: skipped {error}")
            failures += 1
            continue
        json_path, png_path = write_prediction(result, args.out, names[str(clip)])
        modalities = ", ".join(
            f"{m} {result[f'{m}_emotion']}" if result[f"{m}_emotion"] else "no face"
            for m in ("audio", "face")
            if f"{m}_emotion" in result
        )
        print(
            f"{clip}: {result['emotion']} ({result['probabilities'][result['emotion']]:.2f}); "
            f"{modalities} -> {json_path}, {png_path}",
            flush=True,
        )
    if failures == len(clips):
        raise UserError("no clip could be predicted (reasons above)")
    return 1 if failures else 0
