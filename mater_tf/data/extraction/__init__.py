"""Per-clip extraction: one clip -> the windowed embeddings of the data contract.

The per-clip steps that `pipelines/prepare.py` runs over a corpus and
`mater-tf predict` runs on one clip (both build the extractor with
`build_extractor`): the windows (`windowing`), the extractor (`clip_extractor`),
its face windows (`face_windows`), and its construction from prepare's options
(`extractor_factory`).
"""

from mater_tf.data.extraction.clip_extractor import (
    SILENCE_PEAK,
    STAGES,
    ClipExtractor,
    Extraction,
    WindowFeatures,
)
from mater_tf.data.extraction.extractor_factory import build_extractor
from mater_tf.data.extraction.windowing import Windowing

__all__ = [
    "SILENCE_PEAK",
    "STAGES",
    "ClipExtractor",
    "Extraction",
    "WindowFeatures",
    "Windowing",
    "build_extractor",
]
