"""The trained models shipped inside the package (`mater-tf models`): see `registry`."""

from mater_tf.builtin.registry import (
    BUILTIN_DIR,
    BuiltinModel,
    builtin_names,
    card_markdown,
    catalogue_markdown,
    default_name,
    get,
    is_builtin,
    verified_path,
)

__all__ = [
    "BUILTIN_DIR",
    "BuiltinModel",
    "builtin_names",
    "card_markdown",
    "catalogue_markdown",
    "default_name",
    "get",
    "is_builtin",
    "verified_path",
]
