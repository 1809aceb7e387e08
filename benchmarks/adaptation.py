"""Paper-style benchmark: MAESN vs MAML vs RL^2 vs latent-space baseline vs PPO on held-out sparse tasks.

For one task family, every method meta-trains with the dense reward on the training tasks (PPO from
scratch does not), then adapts on the same held-out tasks with the sparse reward, with the same
env-step budget: ``adapt_iterations + 1`` batches of ``adapt_episodes`` episodes per task. Several
seeds; one (method, seed) cell at a time, appended to ``adaptation.csv`` when it finishes, so a killed
run resumes from its last finished cell. Writes ``adaptation.csv`` (every method, seed, task, iteration,
env steps, return, success), ``training.csv`` (meta-training steps and time per cell), ``speed.json``
(env steps/s of MAESN, MAML and SB3 PPO meta-training on the same env, measured side by side),
``adaptation.png`` (return and success vs iteration and vs env steps, 95 % bootstrap bands) and
``adaptation.md`` (interquartile mean and stratified-bootstrap 95 % CIs, rliable-style, numpy only).

A thin script over :mod:`maesn_sb3.benchmark`, which holds the machinery (also ``maesn-sb3 benchmark``).

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
