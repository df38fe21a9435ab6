"""The [media] extra's packages, checked before any work that needs them starts."""

from __future__ import annotations

from mater_tf.errors import UserError

MEDIA_EXTRA = "pip install 'mater-tf[media]'"


def require_media_packages(faces: bool, command: str) -> None:
    """Refuses, naming the install that fixes it, when the [media] extra's packages are missing.

    Checked before any work starts: inside the decoding pipeline a missing
    package would otherwise fail every clip one by one.
    """
    import importlib.util

    needed = {"av": "av", "tensorflow_io": "tensorflow-io"}
    if faces:
        needed["mtcnn"] = "mtcnn"
    missing = [package for module, package in needed.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise UserError(f"{command} needs the media extra (missing: {', '.join(missing)}): {MEDIA_EXTRA}")
