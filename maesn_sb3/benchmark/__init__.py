"""The adaptation benchmark as a library: cells, resumable CSV files, IQM and bootstrap CIs, the report.

``maesn-sb3 benchmark`` (or ``python -m maesn_sb3.benchmark``) runs :func:`main`.
"""

from maesn_sb3.benchmark.cells import (
    COVERAGE_FIELDS,
    FIELDS,
    LABELS,
    METHODS,
    TIERS,
    Config,
    measure_speed,
    run_cell,
)
from maesn_sb3.benchmark.pool import make_pool
from maesn_sb3.benchmark.report import coverage_table, plot, report, table
from maesn_sb3.benchmark.results import append_csv, cell_rows, read_csv, repair_csv
from maesn_sb3.benchmark.run import main
from maesn_sb3.benchmark.stats import bootstrap_ci, iqm, score_matrix

__all__ = [
    "COVERAGE_FIELDS",
    "FIELDS",
    "LABELS",
    "METHODS",
    "TIERS",
    "Config",
    "append_csv",
    "bootstrap_ci",
    "cell_rows",
    "coverage_table",
    "iqm",
    "main",
    "make_pool",
    "measure_speed",
    "plot",
    "read_csv",
    "repair_csv",
    "report",
    "run_cell",
    "score_matrix",
    "table",
]
