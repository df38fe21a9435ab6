"""What every config section is built from: a documented setting and the checks that refuse a value.

A refusal is one line that names the key, its value and a fix that works
(the field's default always passes the field's own check).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from mater_tf.errors import UserError


def setting(default: Any, doc: str) -> Any:
    """A dataclass field with its default and its one-line doc (in the field's `doc` metadata)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


def require(ok: bool, message: str) -> None:
    """Raises a UserError with `message` (key, value and fix) unless `ok`."""
    if not ok:
        raise UserError(f"bad config value: {message}")


def _key_value_default(section: Any, name: str) -> tuple[str, Any, Any]:
    field = next(f for f in dataclasses.fields(section) if f.name == name)
    default = field.default_factory() if field.default is dataclasses.MISSING else field.default
    return f"{section.KEY}.{name}", getattr(section, name), default


def at_least(section: Any, name: str, low: float) -> None:
    """Refuses `section.name` below `low`; the fix is the field's default."""
    key, value, default = _key_value_default(section, name)
    require(value >= low, f"{key}={value} must be >= {low}: e.g. --set {key}={default}")


def above_zero(section: Any, name: str) -> None:
    """Refuses `section.name` <= 0; the fix is the field's default."""
    key, value, default = _key_value_default(section, name)
    require(value > 0, f"{key}={value} must be > 0: e.g. --set {key}={default}")


def fraction(section: Any, name: str) -> None:
    """Refuses `section.name` outside [0, 1); the fix is the field's default."""
    key, value, default = _key_value_default(section, name)
    require(0.0 <= value < 1.0, f"{key}={value} must be in [0, 1): e.g. --set {key}={default}")


def one_of(section: Any, name: str, choices: Sequence[str]) -> None:
    """Refuses `section.name` outside `choices`."""
    key, value, _ = _key_value_default(section, name)
    require(
        value in choices,
        f"{key}={value!r} must be one of {', '.join(choices)}: e.g. --set {key}={choices[0]}",
    )
