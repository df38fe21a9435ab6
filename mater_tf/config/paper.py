"""The `paper` section and the paper's numbers (Ghaleb et al., ICIP 2020), keyed by row.

The tables live here, at the bottom of the import stack, so that config can
check a row key without importing reporting (which re-exports them from
`mater_tf.reporting.paper`).

Table 1: AV accuracy (%) by dataset, windowing, PE and MHSA.
Table 3: A (audio), V (video) and AV accuracy (%) with and without attention
("without" is the baseline with neither PE nor MHSA: its AV equals Table 1's).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mater_tf.config.fields import require, setting

TABLE1 = {
    # key: (dataset, windows, seconds, PE, MHSA, AV accuracy %)
    "ravdess-8x0.5-pe-mhsa": ("RAVDESS", 8, 0.5, True, True, 76.3),
    "ravdess-8x0.5-pe": ("RAVDESS", 8, 0.5, True, False, 70.6),
    "ravdess-8x0.5-mhsa": ("RAVDESS", 8, 0.5, False, True, 75.2),
    "ravdess-8x0.5-none": ("RAVDESS", 8, 0.5, False, False, 69.4),
    "ravdess-16x0.25-pe-mhsa": ("RAVDESS", 16, 0.25, True, True, 74.4),
    "ravdess-16x0.25-none": ("RAVDESS", 16, 0.25, False, False, 66.2),
    "cremad-6x0.5-pe-mhsa": ("CREMA-D", 6, 0.5, True, True, 67.2),
    "cremad-6x0.5-pe": ("CREMA-D", 6, 0.5, True, False, 64.4),
    "cremad-6x0.5-mhsa": ("CREMA-D", 6, 0.5, False, True, 65.0),
    "cremad-6x0.5-none": ("CREMA-D", 6, 0.5, False, False, 61.8),
    "cremad-12x0.25-pe-mhsa": ("CREMA-D", 12, 0.25, True, True, 66.4),
    "cremad-12x0.25-none": ("CREMA-D", 12, 0.25, False, False, 58.3),
}

TABLE3 = {
    # key: (dataset, attention, A %, V %, AV %)
    "ravdess-attention": ("RAVDESS", True, 59.2, 58.2, 76.3),
    "ravdess-no-attention": ("RAVDESS", False, 60.7, 56.0, 69.4),
    "cremad-attention": ("CREMA-D", True, 57.5, 51.7, 67.2),
    "cremad-no-attention": ("CREMA-D", False, 56.0, 49.0, 61.8),
}


@dataclasses.dataclass
class PaperConfig:
    """Which rows of the paper's tables this experiment reproduces (keys of TABLE1 and TABLE3)."""

    KEY: ClassVar[str] = "paper"

    table1: str = setting("", "Table 1 row, e.g. ravdess-8x0.5-pe-mhsa ('' = none).")
    table3: str = setting("", "Table 3 row, e.g. ravdess-attention ('' = none).")

    def validate(self) -> None:
        """Refuses a row key that is not in the paper's table."""
        for name, table, number in (("table1", TABLE1, 1), ("table3", TABLE3, 3)):
            row = getattr(self, name)
            require(
                not row or row in table,
                f"paper.{name}={row!r} is not a Table {number} row: e.g. --set paper.{name}="
                f"{next(iter(table))} (rows: {', '.join(table)}; empty for none)",
            )
