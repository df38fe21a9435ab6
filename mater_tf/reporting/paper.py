"""The paper's numbers (Ghaleb et al., ICIP 2020), in one place, keyed by row.

Table 1: AV accuracy (%) by dataset, windowing, PE and MHSA.
Table 3: A (audio), V (video) and AV accuracy (%) with and without attention
("without" is the baseline with neither PE nor MHSA: its AV equals Table 1's).

The tables are defined in `mater_tf.config.paper`, below both config and
reporting, so that config checks `paper.table1` / `paper.table3` without
importing reporting; this module is where reports read them.
"""

from mater_tf.config.paper import TABLE1, TABLE3

__all__ = ["TABLE1", "TABLE3"]
