"""Building the clip extractor from prepare's options (`build_extractor`), shared by
`mater-tf prepare`, the Beam pipeline and `mater-tf predict`."""

from __future__ import annotations

from mater_tf.data.extraction.clip_extractor import ClipExtractor
from mater_tf.data.extraction.windowing import Windowing
from mater_tf.errors import UserError
from mater_tf.faces import DETECT_EVERY, DETECT_SIDE
from mater_tf.features.log_mel import WINDOW_SAMPLES
from mater_tf.media.formats import SAMPLE_RATE


def build_extractor(
    windows,
    window_seconds,
    modalities,
    face_spec,
    audio_spec,
    frame_side=640,
    detect_side=DETECT_SIDE,
    keep_log_mel=False,
    detect_every=DETECT_EVERY,
):
    """The extractor and its embedders' description (names and weights' checksums).

    `detect_side` and `detect_every` are MTCNN's frame size and every how many
    frames it runs (`mater_tf.faces`); the description records them.

    Raises:
        UserError: naming the `mater-tf prepare` option to fix.
    """
    from mater_tf.features.embedders import audio_embedder, face_embedder, resolved_spec

    if windows < 1 or window_seconds <= 0:
        raise UserError(f"--windows {windows} and --window-seconds {window_seconds} must be positive")
    if Windowing(windows, window_seconds).frames_per_window < 1:
        raise UserError(
            f"--window-seconds {window_seconds} is shorter than one {WINDOW_SAMPLES / SAMPLE_RATE} s "
            "log-mel frame; use longer windows (the paper: 0.5 or 0.25)"
        )
    for option, value in (("--detect-every", detect_every), ("--detect-side", detect_side)):
        if not isinstance(value, int) or value < 1:
            default = DETECT_EVERY if option == "--detect-every" else DETECT_SIDE
            raise UserError(f"{option} {value} must be a whole number of at least 1 (default {default})")
    unknown = set(modalities) - {"audio", "face"}
    if unknown or "audio" not in modalities:
        raise UserError(f"--modalities '{','.join(modalities)}' must be audio,face or audio")
    audio = audio_embedder(audio_spec)
    face, tracker = None, None
    if "face" in modalities:
        if not face_spec:
            raise UserError(
                "--face-embedder is needed for the face modality: vggm:PATH or keras:PATH[:LAYER] "
                "(or pass --modalities audio)"
            )
        from mater_tf.faces import FaceTracker

        face = face_embedder(face_spec)
        tracker = FaceTracker(detect_side=detect_side, detect_every=detect_every)
    info = {
        "audio": {"name": audio.name, "spec": resolved_spec(audio_spec), "sha256": audio.checksum},
        "face": {
            "name": face.name,
            "spec": resolved_spec(face_spec),
            "sha256": face.checksum,
            "detect_side": detect_side,
            "detect_every": detect_every,
        }
        if face
        else None,
    }
    extractor = ClipExtractor(
        Windowing(windows, window_seconds), audio, face, tracker, frame_side, keep_log_mel
    )
    info["keep_log_mel"] = keep_log_mel
    return extractor, info
