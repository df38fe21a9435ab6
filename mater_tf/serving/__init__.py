"""Serving: SavedModel export, and prediction on raw clips and streams.

`export` writes the SavedModel; `model_loading` finds and loads one (or a built-in), `predictor`
holds it with its extractor, `clip_scoring` and `sliding` score a clip's windows, and
`prediction_files` and `page` write what a clip gets. A predict run: `clip_listing` (the clips
given), `output_folder` (`--out`), `predict_clips` or `predict_live`, `run_summary` (the run's
own files), `result_lines` (the terminal's words).
"""
