"""Finding and loading the model predict runs: an export (either layout), a run folder that holds
one, a TF Serving model base, or a built-in model by name (checked against its sha256 first).

A built-in ships as a `.keras` file, not a SavedModel; `KerasSignatures` makes it answer as its
export would, so the predictor calls both the same way.
"""

from __future__ import annotations

from pathlib import Path

from mater_tf.errors import UserError
from mater_tf.serving.export import METADATA_FILE, metadata_path

KERAS_MODEL_FILE = "model.keras"  # a built-in's model: Keras' own format, no optimizer state


def _is_export(folder: Path) -> bool:
    return (folder / "saved_model.pb").is_file() and metadata_path(folder).is_file()


def resolve_export(model_dir: str | Path) -> Path:
    """A SavedModel export folder, given it (either layout), a run folder that holds one, or a TF
    Serving model base (its highest version, the one TF Serving serves)."""
    model_dir = Path(model_dir)
    for candidate in (model_dir, model_dir / "export"):
        if _is_export(candidate):
            return candidate
    versions = sorted(
        (int(child.name), child)
        for child in (model_dir.iterdir() if model_dir.is_dir() else ())
        if child.name.isdigit() and _is_export(child)
    )
    if versions:
        return versions[-1][1]
    raise UserError(
        f"--model {model_dir}: no exported model there (expected saved_model.pb and {METADATA_FILE}, "
        "a run folder with export/, or a TF Serving base of numbered versions); train one with mater-tf "
        "train or make one with mater-tf export"
    )


class _Signature:
    """A `tf.function` of one dict argument called as a SavedModel signature is: with keywords."""

    def __init__(self, function, specs: dict):
        self.function = function
        self.structured_input_signature = ((), specs)

    def __call__(self, **inputs):
        return self.function(inputs)


class KerasSignatures:
    """A `.keras` model answering as its SavedModel export would: `signatures["serving_default"]`
    and, where it attends, `signatures["serve_attention"]` (the export's own computations,
    `mater_tf.serving.export`). The built-in models ship this way: a third of the export's size
    (Keras' SavedModel export stores every weight twice, and three traced signatures)."""

    def __init__(self, path: Path, label_names):
        import tensorflow as tf

        import mater_tf.models  # noqa: F401 - registers MATER's classes with Keras
        from mater_tf.features.embedders import load_keras_model
        from mater_tf.serving.export import input_specs, serving_function

        model = load_keras_model(path, "mater-tf model", "reinstall or retrain it")
        specs = input_specs(model)
        predict = serving_function(model, label_names)
        self.signatures = {
            "serving_default": _Signature(tf.function(predict, input_signature=[specs]), specs)
        }
        if getattr(model, "_attention_scores", None):
            attention = model.attention_model()
            self.signatures["serve_attention"] = _Signature(
                tf.function(lambda inputs: attention(inputs, training=False), input_signature=[specs]), specs
            )


def load_model(export_dir: Path, label_names):
    """The export's SavedModel, or a built-in's `.keras` model answering as one (`KerasSignatures`)."""
    import tensorflow as tf

    if (export_dir / "saved_model.pb").is_file():
        return tf.saved_model.load(str(export_dir))
    return KerasSignatures(export_dir / KERAS_MODEL_FILE, label_names)


def resolve_model(model) -> tuple[Path, object]:
    """(export folder, built-in model or None) of `--model`: None = the default built-in; an
    existing path is an export, a run or a TF Serving base (`resolve_export`); otherwise the name
    of a built-in, whose files are checked against their sha256 first.

    Raises:
        UserError: a path with no export, an unknown name, or a damaged built-in.
    """
    from mater_tf import builtin

    name = builtin.default_name() if model is None else str(model)
    if model is not None and Path(name).exists():
        return resolve_export(name), None
    if not builtin.is_builtin(name):
        raise UserError(
            f"--model {name}: no such folder, and no built-in model of that name (the built-ins are "
            f"{', '.join(builtin.builtin_names())}; mater-tf models shows their cards); give a built-in's "
            "name, a run folder or an export"
        )
    model = builtin.get(name)
    if model.kind != "voice":
        raise UserError(
            f"--model {name}: the built-in {name} is a face channel shown beside a voice model, not a model "
            f"to predict with; leave out --model (the default, {builtin.default_name()}) to see both"
        )
    return builtin.verified_path(model), model
