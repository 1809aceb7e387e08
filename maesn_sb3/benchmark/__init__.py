"""The adaptation benchmark as a library: cells, their checkpoints, resumable CSV files, IQM and bootstrap
CIs, the report, the run's status and the budget curve.

``maesn-sb3 benchmark`` (or ``python -m maesn_sb3.benchmark``) runs :func:`main`.
"""

from maesn_sb3.benchmark.budget import budget_points, budget_runs, budget_table, plot_budget_curve
from maesn_sb3.benchmark.cells import measure_speed, run_cell
from maesn_sb3.benchmark.checkpoints import (
    CHECKPOINTED,
    CellInterrupted,
    Checkpointing,
    TornCheckpoint,
    checkpointed_cells,
    config_differences,
    latest_checkpoint,
    meta_train,
    read_checkpoint,
    remove_checkpoints,
    request_stop,
    stop_at_once,
    stop_on_sigterm,
    stop_requested,
    write_checkpoint,
)
from maesn_sb3.benchmark.config import COVERAGE_FIELDS, FIELDS, LABELS, METHODS, TIERS, Config
from maesn_sb3.benchmark.pool import lower_priority, make_pool
from maesn_sb3.benchmark.report import coverage_table, plot, report, table
from maesn_sb3.benchmark.results import append_csv, cell_rows, read_csv, repair_csv
from maesn_sb3.benchmark.run import main
from maesn_sb3.benchmark.stats import bootstrap_ci, iqm, score_matrix
from maesn_sb3.benchmark.status import status

__all__ = [
    "CHECKPOINTED",
    "COVERAGE_FIELDS",
    "FIELDS",
    "LABELS",
    "METHODS",
    "TIERS",
    "CellInterrupted",
    "Checkpointing",
    "Config",
    "TornCheckpoint",
    "append_csv",
    "bootstrap_ci",
    "budget_points",
    "budget_runs",
    "budget_table",
    "cell_rows",
    "checkpointed_cells",
    "config_differences",
    "coverage_table",
    "iqm",
    "latest_checkpoint",
    "lower_priority",
    "main",
    "make_pool",
    "measure_speed",
    "meta_train",
    "plot",
    "plot_budget_curve",
    "read_checkpoint",
    "read_csv",
    "remove_checkpoints",
    "repair_csv",
    "report",
    "request_stop",
    "run_cell",
    "score_matrix",
    "status",
    "stop_at_once",
    "stop_on_sigterm",
    "stop_requested",
    "table",
    "write_checkpoint",
]
