"""Whole clips predicted one after another: each clip's files and page written as it finishes,
with its verdict and progress on the terminal; then the run's own files (summary, score, the
clips' index) and what was passed over. A clip that fails is listed with its reason and the
others go on; the exit code says whether any failed."""

from __future__ import annotations

import time

from mater_tf.errors import UserError
from mater_tf.serving.output_folder import RUN_FILES
from mater_tf.serving.result_lines import result_line
from mater_tf.serving.run_summary import summary_row, write_passed_over, write_score, write_summary


def predict_clips(predictor, clips, skipped, out, stride: int, copy_media: bool, inputs) -> int:
    """Predicts `clips` (from `collect_clips`, with the files it `skipped`) into the folder `out`.

    Args:
        stride: windows between the starts of the model's inputs.
        copy_media: copy each clip beside its page.
        inputs: the paths given on the command line; where one is a folder or CSV (or there are
            several clips), `index.html` links the clips to their pages.

    Returns:
        The exit code: 1 when any clip failed (the others' files are written), else 0.

    Raises:
        UserError: no clip to predict.
    """
    from mater_tf.media import MediaError
    from mater_tf.serving.page import model_description, write_index, write_page
    from mater_tf.serving.prediction_files import output_names, write_prediction

    # summary.csv, score.json and confusion.png are the run's own: no clip's timeline takes those names.
    names = output_names([clip.path for clip in clips], reserved=RUN_FILES)
    rows, scored, failures, model = [], [], 0, model_description(predictor)
    started, media_seconds, busy = time.time(), 0.0, 0.0
    try:
        for done, clip in enumerate(clips, start=1):
            try:
                result = predictor.predict(clip.path, stride=stride)
            except MediaError as error:
                print(f"mater-tf predict: skipped {error}")
                rows.append(summary_row(clip, names[clip.path], None, str(error), predictor))
                failures += 1
                continue
            json_path, csv_path, png_path = write_prediction(result, out, names[clip.path])
            html_path = write_page(result, out, names[clip.path], model, clip.path, copy_media)
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
                f"{clip.path}: {result_line(result)}; {result['num_windows']} windows over "
                f"{result['duration']:.1f} s in {result['seconds']:.1f} s (real-time factor "
                f"{result['realtime_factor']:.2f}) -> {json_path}, {csv_path.name}, {png_path.name}, "
                f"{html_path.name}{progress}",
                flush=True,
            )
    finally:
        # Written however the run ends (Ctrl-C, a failure): the clips finished so far stay listed.
        summary = write_summary(out, rows, predictor.metadata["label_names"]) if rows else None
    if skipped:
        print(write_passed_over(out, skipped))
    if media_seconds:
        print(
            f"{len(clips) - failures} clips, {media_seconds:.1f} s of media in {busy:.1f} s "
            f"(real-time factor {busy / media_seconds:.2f}); summary: {summary}"
        )
    score = write_score(out, scored, predictor.metadata["label_names"], len(rows)) if scored else None
    if rows and (len(rows) > 1 or any(given.is_dir() or given.suffix.lower() == ".csv" for given in inputs)):
        print(f"the clips, linked to their pages: {write_index(out, rows, score)}")
    if not clips:
        raise UserError("no clip to predict (reasons above)")
    if failures == len(clips):
        print("mater-tf predict: no clip could be predicted (reasons above)")
    # The rule prepare follows too (docs/prepare.md, "Exit codes"): 1 when any clip failed, however many.
    return 1 if failures else 0
