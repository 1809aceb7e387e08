"""Paper-style benchmark: MAESN vs MAML vs RL^2 vs latent-space baseline vs PPO on held-out sparse tasks.

A thin script over :mod:`maesn_sb3.benchmark` (also ``maesn-sb3 benchmark``), whose module docstring
and ``--help`` describe the tiers, the resumable output folder and the report.

    python benchmarks/adaptation.py --tier quick                  # PointNav2D, all methods, < 30 min
    python benchmarks/adaptation.py --tier paper --env maesn_sb3/WheeledNav-v0
    python benchmarks/adaptation.py --tier quick --report-only    # redo table and plot from the CSV
"""

from __future__ import annotations

import sys

from maesn_sb3.benchmark import (  # noqa: F401  (the names the tests and older callers use)
    FIELDS,
    LABELS,
    METHODS,
    TIERS,
    Config,
    append_csv,
    bootstrap_ci,
    cell_rows,
    iqm,
    main,
    make_pool,
    measure_speed,
    read_csv,
    repair_csv,
    report,
    run_cell,
    score_matrix,
    table,
)

if __name__ == "__main__":
    sys.exit(main())
