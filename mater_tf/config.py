"""Typed experiment configuration: dataclasses, YAML files and `--set` overrides.

Every knob lives here with its default and a one-line doc (the `doc` metadata).
An experiment YAML overrides the defaults, `--set section.key=value` overrides
both, and the resolved config is written to the run directory before anything
else, so every later command reads it from there.

Defaults follow the paper where it gives a value (Adam, batch 64, 300 epochs,
learning rate 1e-6, plateau patience 20, 6 encoder layers, 12 folds) and the
transformer it builds on (Vaswani et al. 2017, base model) where it does not:
d_model 512 (the embeddings are 512-d and the paper adds the PE to them
unchanged, so d_model equals the embedding size), 8 heads, feed-forward 2048,
dropout 0.1.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from pathlib import Path
from typing import Any

import yaml

from mater_tf.errors import UserError

MODALITIES = ("audio", "face")
LR_SCHEDULES = ("plateau", "cosine")
LOG_MEL_NORMALIZATIONS = ("band", "patch", "none")  # = mater_tf.layers.frontends.NORMALIZATIONS (no TF here)
ENCODERS = ("transformer", "lstm")
TUNERS = ("random", "hyperband", "bayesian")
PRESETS_DIR = Path(__file__).parent / "presets"


def _field(default, doc: str, **kwargs):
    if isinstance(default, (list, dict)):
        return dataclasses.field(
            default_factory=lambda: type(default)(default), metadata={"doc": doc}, **kwargs
        )
    return dataclasses.field(default=default, metadata={"doc": doc}, **kwargs)


@dataclasses.dataclass
class SyntheticConfig:
    """The built-in synthetic corpus (see `mater_tf.data.synthetic`)."""

    num_subjects: int = _field(24, "Speakers; folds are made of whole speakers.")
    clips_per_subject: int = _field(40, "Clips per speaker, classes balanced.")
    num_classes: int = _field(6, "Emotion classes (at least 4).")
    num_windows: int = _field(8, "Windows per clip (T).")
    min_valid_windows: int = _field(6, "Shortest clip in windows; the rest are masked.")
    audio_dim: int = _field(32, "Audio embedding size (D_a).")
    face_dim: int = _field(32, "Face embedding size (D_v).")
    evidence_windows: int = _field(2, "Consecutive windows that carry the emotion.")
    signal_strength: float = _field(0.8, "Evidence norm relative to per-window noise.")
    face_dropout: float = _field(0.1, "Chance that a window has no face (masked).")
    seed: int = _field(0, "Seed of the corpus; the same seed gives the same records.")


@dataclasses.dataclass
class DataConfig:
    """Where the windowed-embedding records come from."""

    source: str = _field(
        "synthetic",
        "'synthetic' or a folder / glob of TFRecord shards following the data contract.",
    )
    num_windows: int = _field(0, "Windows per clip the records must have (0 = any).")
    window_seconds: float = _field(0.0, "Window length the records must have (0 = any).")
    synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)
    shuffle_buffer: int = _field(2048, "Shuffle buffer of the training split, in clips.")


@dataclasses.dataclass
class ModelConfig:
    """The MATER network (paper section 2.2) and its variants."""

    modalities: list = _field(list(MODALITIES), "Branches to build: audio, face or both.")
    encoder: str = _field("transformer", "'transformer' (MATER) or 'lstm' (baseline).")
    positional_encoding: bool = _field(True, "Add the sinusoidal PE before the encoders.")
    attention: bool = _field(True, "Multi-head self-attention; off keeps the feed-forward.")
    num_layers: int = _field(6, "Encoder layers per modality (paper: 6).")
    d_model: int = _field(512, "Width of the encoders (embeddings are projected to it).")
    num_heads: int = _field(8, "Attention heads; must divide d_model.")
    ff_dim: int = _field(2048, "Hidden size of the position-wise feed-forward layer.")
    dropout: float = _field(0.1, "Dropout in the encoders and the prediction layers.")
    head_hidden_dim: int = _field(256, "Width of the first of the two FC layers.")
    audio_frontend: str = _field(
        "none",
        "none (audio embeddings from prepare), or vggish / small: a conv front end on the log-mel, in the model.",
    )
    log_mel_normalization: str = _field(
        "band",
        "Front end input: band (per mel band, with the training split's statistics; keeps the "
        "voice's level), patch (each patch to zero mean, unit variance) or none (raw log-mel, "
        "what pretrained VGGish expects).",
    )
    audio_frontend_trainable: bool = _field(True, "Train the audio front end (false freezes it).")
    audio_frontend_weights: str = _field("", "VGGish weights for the vggish front end ('' = random init).")


@dataclasses.dataclass
class TrainConfig:
    """Optimisation (paper section 3.1)."""

    batch_size: int = _field(64, "Clips per batch (paper: 64).")
    epochs: int = _field(300, "Maximum epochs (paper: 300).")
    learning_rate: float = _field(1e-6, "Initial Adam learning rate (paper: 1e-6).")
    lr_schedule: str = _field(
        "plateau", "plateau (the paper: drop on a loss plateau) or cosine (decay to 0 over train.epochs)."
    )
    lr_patience: int = _field(20, "Epochs without val-loss gain before the LR drops (paper: 20).")
    lr_factor: float = _field(0.1, "Factor of each LR drop.")
    min_learning_rate: float = _field(0.0, "The LR never drops below this.")
    early_stopping_patience: int = _field(0, "Stop after this many epochs without gain; 0 = off.")
    modality_loss_weight: float = _field(
        0.0, "Weight of extra per-modality losses; 0 = the paper's fused loss only."
    )
    seed: int = _field(0, "Seed of weights, dropout and shuffling.")


@dataclasses.dataclass
class CVConfig:
    """Subject-disjoint cross-validation (paper: 12 folds RAVDESS, 10 CREMA-D)."""

    num_folds: int = _field(12, "Folds of whole subjects.")
    test_fold: int = _field(0, "Fold held out by `mater-tf train` (cv runs them all).")
    validation: bool = _field(
        True,
        "Hold out the fold after the test fold for the LR plateau, early stopping and the best "
        "checkpoint; false = the paper's protocol: every other fold trains for train.epochs, the "
        "last weights are kept and the LR plateau watches the training loss.",
    )


@dataclasses.dataclass
class PaperConfig:
    """Which rows of the paper's tables this experiment reproduces (keys of mater_tf.reporting.paper)."""

    table1: str = _field("", "Table 1 row, e.g. ravdess-8x0.5-pe-mhsa ('' = none).")
    table3: str = _field("", "Table 3 row, e.g. ravdess-attention ('' = none).")


@dataclasses.dataclass
class TuneConfig:
    """Keras Tuner search (mater-tf tune). An empty list leaves that knob at its config value."""

    algorithm: str = _field("random", "random, hyperband or bayesian.")
    max_trials: int = _field(10, "Trials (random, bayesian); hyperband sizes itself from max_epochs.")
    epochs: int = _field(20, "Epochs per trial (hyperband: the most any trial gets).")
    num_heads: list = _field([2, 4, 8], "Head counts to try (each must divide d_model).")
    learning_rate: list = _field([1e-5, 1e-2], "Learning-rate range [low, high], sampled log-uniformly.")
    num_layers: list = _field([], "Encoder depths to try.")
    d_model: list = _field([], "Encoder widths to try.")
    ff_dim: list = _field([], "Feed-forward widths to try.")
    dropout: list = _field([], "Dropout rates to try.")
    seed: int = _field(0, "Seed of the search.")


@dataclasses.dataclass
class ExperimentConfig:
    """One experiment: data, model, training and evaluation protocol."""

    name: str = _field("experiment", "Name of the experiment; runs go to runs/<name>/.")
    description: str = _field("", "Free text, copied into the run directory.")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    cv: CVConfig = dataclasses.field(default_factory=CVConfig)
    tune: TuneConfig = dataclasses.field(default_factory=TuneConfig)
    paper: PaperConfig = dataclasses.field(default_factory=PaperConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def fingerprint(self) -> str:
        """A short hash of everything that changes the result."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


def _number_if_numeric(item: Any) -> Any:
    """YAML 1.1 reads 1e-3 (no dot) as a string; list items that are numbers become numbers."""
    if isinstance(item, str):
        for kind in (int, float):
            try:
                return kind(item)
            except ValueError:
                pass
    return item


def _check_value(path: str, value: Any, expected: Any) -> Any:
    """Coerces a YAML value to the field's type, or raises UserError."""
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif expected is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif expected is list:
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, (list, tuple)):
            return [_number_if_numeric(item) for item in value]
    type_name = getattr(expected, "__name__", str(expected))
    raise UserError(f"config value {path}={value!r} must be a {type_name}; fix it in the YAML or --set")


def _unknown_key(path: str, key: str, known: list[str]) -> UserError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return UserError(f"unknown config key '{path}{key}'{hint}; valid keys here: {', '.join(known)}")


def _merge(instance: Any, overrides: dict, prefix: str = "") -> Any:
    """Returns a copy of dataclass `instance` with nested `overrides` applied."""
    if not isinstance(overrides, dict):
        raise UserError(f"config section '{prefix.rstrip('.') or '<top>'}' must be a mapping")
    hints = typing.get_type_hints(type(instance))
    fields = {f.name: f for f in dataclasses.fields(instance)}
    changes = {}
    for key, value in overrides.items():
        if key not in fields:
            raise _unknown_key(prefix, str(key), list(fields))
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _merge(current, value, f"{prefix}{key}.")
        else:
            changes[key] = _check_value(f"{prefix}{key}", value, hints[key])
    return dataclasses.replace(instance, **changes)


def parse_set_overrides(assignments: list[str] | None) -> dict:
    """Turns ['model.num_heads=4', ...] into a nested dict (values parsed as YAML)."""
    nested: dict = {}
    for assignment in assignments or []:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set '{assignment}' is not key=value (e.g. --set model.num_heads=4)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set '{assignment}' conflicts with an earlier --set")
        node[parts[-1]] = value
    return nested


def validate(config: ExperimentConfig) -> ExperimentConfig:
    """Checks values that are of the right type but out of range."""
    model, train, cv, synthetic = config.model, config.train, config.cv, config.data.synthetic

    def require(ok: bool, message: str) -> None:
        if not ok:
            raise UserError(f"bad config value: {message}")

    require(
        bool(model.modalities) and all(m in MODALITIES for m in model.modalities),
        f"model.modalities={model.modalities} must be a non-empty subset of {list(MODALITIES)}",
    )
    require(len(set(model.modalities)) == len(model.modalities), "model.modalities repeats a name")
    require(
        model.audio_frontend in ("none", "vggish", "small"),
        f"model.audio_frontend={model.audio_frontend!r} must be none, vggish or small",
    )
    require(
        model.log_mel_normalization in LOG_MEL_NORMALIZATIONS,
        f"model.log_mel_normalization={model.log_mel_normalization!r} must be one of {list(LOG_MEL_NORMALIZATIONS)}",
    )
    require(
        not model.audio_frontend_weights or model.log_mel_normalization == "none",
        "pretrained VGGish weights expect the raw log-mel: add --set model.log_mel_normalization=none",
    )
    require(
        not model.audio_frontend_weights or model.audio_frontend == "vggish",
        "model.audio_frontend_weights needs model.audio_frontend=vggish",
    )
    require(model.encoder in ENCODERS, f"model.encoder={model.encoder!r} must be one of {list(ENCODERS)}")
    for name in ("num_layers", "d_model", "num_heads", "ff_dim", "head_hidden_dim"):
        require(getattr(model, name) >= 1, f"model.{name}={getattr(model, name)} must be >= 1")
    require(
        model.d_model % model.num_heads == 0,
        f"model.num_heads={model.num_heads} must divide model.d_model={model.d_model}",
    )
    require(0.0 <= model.dropout < 1.0, f"model.dropout={model.dropout} must be in [0, 1)")
    require(train.batch_size >= 1, f"train.batch_size={train.batch_size} must be >= 1")
    require(train.epochs >= 1, f"train.epochs={train.epochs} must be >= 1")
    require(train.learning_rate > 0, f"train.learning_rate={train.learning_rate} must be > 0")
    require(0.0 < train.lr_factor < 1.0, f"train.lr_factor={train.lr_factor} must be in (0, 1)")
    require(train.lr_patience >= 1, f"train.lr_patience={train.lr_patience} must be >= 1")
    require(train.early_stopping_patience >= 0, "train.early_stopping_patience must be >= 0")
    require(train.modality_loss_weight >= 0, "train.modality_loss_weight must be >= 0")
    if cv.validation:
        require(cv.num_folds >= 3, f"cv.num_folds={cv.num_folds} must be >= 3 (test, validation, train)")
    else:
        require(cv.num_folds >= 2, f"cv.num_folds={cv.num_folds} must be >= 2 (test, train)")
        require(
            train.early_stopping_patience == 0,
            "train.early_stopping_patience needs validation subjects: set it to 0 with cv.validation=false",
        )
    require(
        train.lr_schedule in LR_SCHEDULES,
        f"train.lr_schedule={train.lr_schedule!r} must be one of {list(LR_SCHEDULES)}",
    )
    require(
        0 <= cv.test_fold < cv.num_folds,
        f"cv.test_fold={cv.test_fold} must be in [0, cv.num_folds={cv.num_folds})",
    )
    require(synthetic.num_classes >= 4, "data.synthetic.num_classes must be >= 4")
    require(synthetic.num_windows >= 2, "data.synthetic.num_windows must be >= 2")
    require(
        synthetic.evidence_windows <= synthetic.min_valid_windows <= synthetic.num_windows,
        "need data.synthetic.evidence_windows <= min_valid_windows <= num_windows",
    )
    require(
        synthetic.min_valid_windows >= 2 * synthetic.evidence_windows,
        "data.synthetic.min_valid_windows must be >= 2 * evidence_windows, so that early and "
        "late evidence (classes 4 and 5) never overlap",
    )
    require(0.0 <= synthetic.face_dropout < 1.0, "data.synthetic.face_dropout must be in [0, 1)")
    tune = config.tune
    require(tune.algorithm in TUNERS, f"tune.algorithm={tune.algorithm!r} must be one of {list(TUNERS)}")
    require(tune.max_trials >= 1 and tune.epochs >= 1, "tune.max_trials and tune.epochs must be >= 1")
    require(
        len(tune.learning_rate) in (0, 2) and all(v > 0 for v in tune.learning_rate),
        f"tune.learning_rate={tune.learning_rate} must be [low, high] with both > 0 (or [] to keep it)",
    )
    from mater_tf.reporting.paper import TABLE1, TABLE3

    require(
        not config.paper.table1 or config.paper.table1 in TABLE1,
        f"paper.table1={config.paper.table1!r} is not a Table 1 row; rows: {', '.join(TABLE1)}",
    )
    require(
        not config.paper.table3 or config.paper.table3 in TABLE3,
        f"paper.table3={config.paper.table3!r} is not a Table 3 row; rows: {', '.join(TABLE3)}",
    )
    return config


def preset_path(name: str) -> Path:
    """The YAML of a preset experiment shipped with the package."""
    return PRESETS_DIR / f"{name}.yaml"


def load_config(experiment: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Resolves an experiment: defaults <- YAML (a path or a preset name) <- --set.

    Args:
        experiment: path to an experiment YAML, a preset name ('quickstart'),
            or None for the quickstart preset.
        overrides: `section.key=value` strings.

    Returns:
        The validated config.

    Raises:
        UserError: on a missing file, bad YAML, unknown key or bad value.
    """
    experiment = experiment or "quickstart"
    path = Path(experiment)
    if not path.is_file() and preset_path(str(experiment)).exists():  # a folder may share the name
        path = preset_path(str(experiment))
    if not path.is_file():
        presets = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
        raise UserError(
            f"experiment '{experiment}' not found: give a YAML path or one of the presets {presets}"
        )
    config = _merge(_load_yaml_chain(path, []), parse_set_overrides(overrides))
    return validate(config)


def _load_yaml_chain(path: Path, seen: list) -> ExperimentConfig:
    """Defaults <- the YAML's `base` (a path relative to it, or a preset) <- the YAML."""
    if path.resolve() in seen:
        raise UserError(f"{path}: 'base' chain loops back to itself ({' -> '.join(map(str, seen))})")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]}); fix the file") from None
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: an experiment YAML must be a mapping of sections")
    base = loaded.pop("base", None)
    config = ExperimentConfig()
    if base:
        base_path = path.parent / str(base)
        if not base_path.is_file() and preset_path(str(base)).is_file():
            base_path = preset_path(str(base))
        if not base_path.is_file():
            raise UserError(
                f"{path}: base '{base}' not found (a YAML path relative to this file, or a preset)"
            )
        config = _load_yaml_chain(base_path, seen + [path.resolve()])
    return _merge(config, loaded)


def config_from_dict(values: dict) -> ExperimentConfig:
    """Rebuilds a config saved by `ExperimentConfig.to_dict` (e.g. a run's config.yaml)."""
    return validate(_merge(ExperimentConfig(), values))


def read_run_config(run_dir: str | Path) -> ExperimentConfig:
    """Reads the resolved config of a run directory."""
    path = Path(run_dir) / "config.yaml"
    if not Path(run_dir).is_dir():
        raise UserError(f"run directory '{run_dir}' does not exist; give a folder made by mater-tf train")
    if not path.is_file():
        raise UserError(f"'{run_dir}' has no config.yaml: it is not a mater-tf run directory")
    return config_from_dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
