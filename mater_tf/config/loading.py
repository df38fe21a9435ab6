"""Resolving an experiment: defaults <- YAML chain <- `--set`, with OmegaConf doing the parsing.

OmegaConf's structured configs read the YAML, merge the `base:` chain, apply
`--set a.b=c`, coerce types and refuse unknown keys; this module only finds
the files and turns OmegaConf's exceptions into one-line UserErrors that name
the key and a fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from mater_tf.config.experiment import ExperimentConfig, validate
from mater_tf.errors import UserError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"

_TYPE_NAMES = {bool: "a bool (true or false)", int: "an int", float: "a float", str: "a string"}


def preset_path(name: str) -> Path:
    """The YAML of a preset experiment shipped with the package."""
    return PRESETS_DIR / f"{name}.yaml"


def load_config(experiment: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Resolves an experiment: defaults <- YAML (a path or a preset name) <- --set.

    Args:
        experiment: path to an experiment YAML, a preset name ('quickstart'),
            or None for the quickstart preset.
        overrides: `section.key=value` strings; a list field also takes
            `a,b` or `[a, b]`.

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
    merged = OmegaConf.structured(ExperimentConfig)
    for source, values in _yaml_chain(path, ()):
        merged = _merge(merged, values, str(source))
    for assignment in overrides or []:
        _apply_assignment(merged, assignment)
    config = _to_config(merged, "the resolved config")
    _check_list_items(config)
    return validate(config)


def _check_list_items(section: Any, prefix: str = "") -> None:
    """Refuses a list field holding an item of another type (OmegaConf lets a nested list
    through a list of str), in one line, before the sections' checks hash or compare them."""
    hints = typing.get_type_hints(type(section))
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        if dataclasses.is_dataclass(value):
            _check_list_items(value, f"{prefix}{field.name}.")
        elif typing.get_origin(hints[field.name]) is list:
            item = typing.get_args(hints[field.name])[0]
            if not all(isinstance(v, item) and not isinstance(v, bool) for v in value):
                raise UserError(
                    f"the resolved config: config value {prefix}{field.name}={value!r} must be "
                    f"{_describe(hints[field.name])}; fix it in the YAML or --set"
                )


# Keys that older versions wrote into run folders and that no longer mean anything
# (data.shuffle_buffer: every epoch now shuffles the whole training split).
RETIRED_KEYS = {"data": ("shuffle_buffer",)}


def config_from_dict(values: dict, source: str = "config") -> ExperimentConfig:
    """Rebuilds a config saved by `ExperimentConfig.to_dict` (e.g. a run's config.yaml)."""
    if not isinstance(values, dict):
        raise UserError(f"{source}: a config must be a mapping of sections (name, data, model, ...)")
    values = {
        section: {k: v for k, v in content.items() if k not in RETIRED_KEYS.get(section, ())}
        if isinstance(content, dict)
        else content
        for section, content in values.items()
    }
    merged = _merge(OmegaConf.structured(ExperimentConfig), values, source)
    return validate(_to_config(merged, source))


def read_run_config(run_dir: str | Path) -> ExperimentConfig:
    """Reads the resolved config of a run directory."""
    path = Path(run_dir) / "config.yaml"
    if Path(run_dir).is_file():
        raise UserError(f"'{run_dir}' is a file; give the run's folder (made by mater-tf train)")
    if not Path(run_dir).is_dir():
        raise UserError(f"run directory '{run_dir}' does not exist; give a folder made by mater-tf train")
    if not path.is_file():
        raise UserError(f"'{run_dir}' has no config.yaml: it is not a mater-tf run directory")
    return config_from_dict(_read_yaml(path), str(path))


def _read_yaml(path: Path) -> dict:
    """The YAML's mapping (YAML 1.2 numbers: `1e-3` is a float)."""
    try:
        loaded = OmegaConf.load(path)
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]}); fix the file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(
            f"{path}: cannot be read ({error}); check the path and that it is UTF-8 text"
        ) from None
    if not isinstance(loaded, DictConfig):
        raise UserError(f"{path}: an experiment YAML must be a mapping of sections (name, data, model, ...)")
    if not loaded:
        # An empty file (or only comments) would train the defaults silently, as if the YAML said something.
        raise UserError(
            f"{path}: empty; an experiment YAML sets what it changes (e.g. 'base: quickstart' and a "
            "'data: {source: ...}' section); to run the defaults, leave out --experiment"
        )
    return OmegaConf.to_container(loaded, resolve=False)


def _yaml_chain(path: Path, seen: tuple) -> list[tuple[Path, dict]]:
    """The YAMLs to merge, base first: each `base` is a path relative to its YAML, or a preset."""
    if path.resolve() in seen:
        chain = " -> ".join(map(str, (*seen, path.resolve())))
        raise UserError(
            f"{path}: 'base' chain loops back to itself ({chain}); remove one of those 'base' lines"
        )
    values = _read_yaml(path)
    base = values.pop("base", None)
    if not base:
        return [(path, values)]
    base_path = path.parent / str(base)
    if not base_path.is_file() and preset_path(str(base)).is_file():
        base_path = preset_path(str(base))
    if not base_path.is_file():
        raise UserError(f"{path}: base '{base}' not found (a YAML path relative to this file, or a preset)")
    return _yaml_chain(base_path, (*seen, path.resolve())) + [(path, values)]


def _merge(merged: DictConfig, values: dict, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(merged, values)
    except OmegaConfBaseException as error:
        raise _user_error(error, source, values) from None


def _apply_assignment(merged: DictConfig, assignment: str) -> None:
    """Applies one `--set key=value` to `merged` in place."""
    key, equals, raw = assignment.partition("=")
    key = key.strip()
    if not equals or not key or "" in key.split("."):
        raise UserError(f"--set '{assignment}' is not key=value (e.g. --set model.num_heads=4)")
    try:
        OmegaConf.update(merged, key, _parse_value(raw.strip(), _field_type(key), assignment), merge=True)
    except OmegaConfBaseException as error:
        raise _user_error(error, f"--set {assignment}") from None


def _parse_value(raw: str, field_type: Any, assignment: str) -> Any:
    """A `--set` value: YAML, except that a string field keeps the text and a list field takes `a,b`."""
    if typing.get_origin(field_type) is list and not raw.startswith("["):
        return [item.strip() for item in raw.split(",") if item.strip()]
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        if typing.get_origin(field_type) is list:
            raise UserError(f"--set {assignment}: not a list; write [a, b] or a,b") from None
        return raw
    if field_type is str and not isinstance(value, str):
        return raw  # e.g. `yes` or `1e-3` stay as typed
    return value


def _field_type(dotted_key: str) -> Any:
    """The annotated type of `a.b.c` in ExperimentConfig (list items: `a[0]`), or None if unknown."""
    node: Any = ExperimentConfig
    for part in dotted_key.split("."):
        name, _, index = part.partition("[")
        if not dataclasses.is_dataclass(node) or name not in {f.name for f in dataclasses.fields(node)}:
            return None
        node = typing.get_type_hints(node)[name]
        if index and typing.get_origin(node) is list:
            node = typing.get_args(node)[0]
    return node


def _describe(field_type: Any) -> str:
    if dataclasses.is_dataclass(field_type):
        keys = ", ".join(f.name for f in dataclasses.fields(field_type))
        return f"a mapping of its keys ({keys})"
    if typing.get_origin(field_type) is list:
        item = typing.get_args(field_type)[0]
        return f"a list of {item.__name__} ([a, b], or a,b after --set)"
    return _TYPE_NAMES.get(field_type, str(field_type))


def _user_error(error: OmegaConfBaseException, source: str, values: dict | None = None) -> UserError:
    """One line for an OmegaConf exception: the key, what is wrong, and the fix."""
    key = error.full_key
    if isinstance(error, (ConfigKeyError, ConfigAttributeError)) and key:
        return _unknown_key(source, str(key))
    if isinstance(error, ValidationError) and key:
        expected = _describe(_field_type(str(key)))
        if error.value is None:
            return UserError(f"{source}: config key {key} has no value; give {expected}")
        return UserError(
            f"{source}: config value {key}={error.value!r} must be {expected}; fix it in the YAML or --set"
        )
    section = _section_given_a_value(values or {})
    if section:
        return UserError(f"{source}: config section {section} must be {_describe(_field_type(section))}")
    return UserError(f"{source}: {str(error).splitlines()[0]} (at {key or 'the top level'}); fix that value")


def _unknown_key(source: str, full_key: str) -> UserError:
    parent, _, leaf = full_key.rpartition(".")
    section = _field_type(parent) if parent else ExperimentConfig
    known = [f.name for f in dataclasses.fields(section)] if dataclasses.is_dataclass(section) else []
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    where = f"in {parent}" if parent else "at the top level"
    return UserError(
        f"{source}: unknown config key '{full_key}'{hint}; valid keys {where}: {', '.join(known)}"
    )


def _section_given_a_value(values: dict, prefix: str = "") -> str | None:
    """The first `section` in `values` that holds a plain value where a mapping belongs."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if dataclasses.is_dataclass(_field_type(path)):
            if not isinstance(value, dict):
                return path
            inner = _section_given_a_value(value, f"{path}.")
            if inner:
                return inner
    return None


def _to_config(merged: DictConfig, source: str) -> ExperimentConfig:
    """The dataclasses, with `${...}` interpolations resolved."""
    try:
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise UserError(
            f"{source}: config value {error.full_key}: {str(error).splitlines()[0]}; fix that ${{...}} reference"
        ) from None
