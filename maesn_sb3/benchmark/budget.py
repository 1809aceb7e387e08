"""The budget curve: held-out success after adaptation, and exploration coverage, against the
meta-training budget, from the run folders of one task family at several ``--budget-scale`` values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from maesn_sb3.benchmark.config import META_LEARNERS, Config, resolved_kwargs
from maesn_sb3.benchmark.report import label
from maesn_sb3.benchmark.results import cell_rows, read_csv
from maesn_sb3.benchmark.stats import bootstrap_ci, iqm, score_matrix

#: settings that do not change the cells of MAESN, the latent-space baseline and MAML (the outer update
#: is compared as each method receives it)
NEUTRAL = ("budgets", "speed_steps", "outer_update", "outer_kwargs", "resolved_kwargs")
CURVE_METHODS = META_LEARNERS


def _cell_settings(config: Config, method: str) -> dict[str, Any]:
    """The settings that reach ``method``'s cells: the config less :data:`NEUTRAL`, with the method's
    hyperparameters as its folder recorded them (a folder written before they were recorded: as its
    class receives them today, the defaults included), so that ``{}`` and the defaults written out are
    the same run."""
    settings = {k: v for k, v in asdict(config).items() if k not in NEUTRAL}
    settings["outer_kwargs"] = (config.resolved_kwargs or resolved_kwargs(config))[method]
    return settings


def budget_runs(
    root: Path, env_id: str, base: Config | None = None, methods: Sequence[str] = CURVE_METHODS
) -> tuple[list[tuple[Path, Config]], list[Path]]:
    """The run folders under ``root`` of the task family ``env_id`` whose settings, budgets aside, are
    those of ``base`` for at least one of ``methods`` (by default the settings of the family's base folder
    ``root/<family>``, the first folder when there is none); and the folders of the family with other
    settings (e.g. ``--vanilla-gradient``), left out."""
    runs = []
    for folder in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        saved = folder / "config.json"
        if saved.is_file() and json.loads(saved.read_text()).get("env_id") == env_id:
            runs.append((folder, Config(**json.loads(saved.read_text()))))
    if not runs:
        return [], []
    base = base or family_base(runs, env_id)
    kept, other = [], []
    for folder, config in runs:
        same = any(_cell_settings(config, m) == _cell_settings(base, m) for m in methods)
        (kept if same else other).append((folder, config))
    return kept, [folder for folder, _ in other]


def family_base(runs: Sequence[tuple[Path, Config]], env_id: str) -> Config:
    """The settings of the family's base folder ``<family>`` among ``runs`` (the first without one)."""
    family = env_id.split("/")[-1].split(":")[-1]
    return next((config for folder, config in runs if folder.name == family), runs[0][1])


def budget_points(
    runs: Sequence[tuple[Path, Config]], methods: Sequence[str] = CURVE_METHODS, base: Config | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Per method, one point per run folder that has finished cells of it (with ``base``'s settings for
    that method, where ``base`` is given), by budget: ``steps`` (the
    method's meta-training budget), ``seeds``, ``iqm``, ``low``, ``high`` (held-out success at the last
    adaptation iteration, IQM over seeds x tasks with its 95 % stratified-bootstrap CI) and ``coverage``
    (the mean over seeds of ``coverage.csv``'s ``coverage_latents``; None where the folder has none)."""
    points: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for folder, config in runs:
        rows = [r for cell in cell_rows(read_csv(folder / "adaptation.csv"), config).values() for r in cell]
        coverage = read_csv(folder / "coverage.csv")
        for method in methods:
            if method not in config.budgets or not any(r["method"] == method for r in rows):
                continue
            if base is not None and _cell_settings(config, method) != _cell_settings(base, method):
                continue
            scores = score_matrix(rows, method, config.adapt_iterations, "success")
            low, high = bootstrap_ci(scores)
            covered = [float(r["coverage_latents"]) for r in coverage if r["method"] == method]
            points[method].append(
                {
                    "steps": config.budgets[method],
                    "seeds": scores.shape[0],
                    "iqm": iqm(scores),
                    "low": low,
                    "high": high,
                    "coverage": float(np.mean(covered)) if covered else None,
                    "folder": folder.name,
                    "label": label(method, config),
                }
            )
    return {m: sorted(p, key=lambda point: point["steps"]) for m, p in points.items() if p}


def plot_budget_curve(
    root: Path,
    env_id: str,
    path: Path,
    methods: Sequence[str] = CURVE_METHODS,
    base: Config | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Draw the family's budget curve to ``path`` from the run folders of :func:`budget_runs` (``base``'s
    settings): IQM held-out success at the last adaptation iteration against meta-training env steps,
    every method on one figure, and beside it the exploration coverage where a run folder has
    ``coverage.csv``. Returns the points drawn (see :func:`budget_points`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator, PercentFormatter

    runs, _ = budget_runs(root, env_id, base, methods)
    points = budget_points(runs, methods, base or (family_base(runs, env_id) if runs else None))
    if not points:
        raise ValueError(f"no finished cells of {list(methods)} for {env_id} under {root}")
    with_coverage = any(p["coverage"] is not None for curve in points.values() for p in curve)
    panels = 2 if with_coverage else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2), squeeze=False)
    last = runs[0][1].adapt_iterations
    budgets = sorted({p["steps"] for curve in points.values() for p in curve})
    for i, curve in enumerate(points.values()):
        steps = [p["steps"] * 1.03 ** (i - 1) for p in curve]  # side by side: the CIs do not hide each other
        middle = np.array([p["iqm"] for p in curve])
        spread = [middle - [p["low"] for p in curve], [p["high"] for p in curve] - middle]
        bars = axes[0, 0].errorbar(steps, middle, spread, fmt="o-", ms=4, capsize=3, label=curve[0]["label"])
        color = bars.lines[0].get_color()
        covered = [(x, p["coverage"]) for x, p in zip(steps, curve, strict=True) if p["coverage"] is not None]
        if with_coverage and covered:
            x, y = zip(*covered, strict=True)
            axes[0, 1].plot(x, y, "o-", ms=4, color=color, label=curve[0]["label"])
    axes[0, 0].set_ylabel(f"held-out success at iteration {last} (IQM, 95 % CI)")
    titles = ["held-out success after adaptation"]
    if with_coverage:
        axes[0, 1].set_ylabel("held-out tasks reached before adaptation")
        titles.append("exploration coverage (latents from the prior)")
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("meta-training env steps")
        ax.set_xticks(budgets, [f"{b / 1e6:g}M" for b in budgets])  # the budgets run, not log decades
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="method", title_fontsize=8)
    fig.suptitle(f"{env_id}: the budget curve", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return points


def budget_table(points: dict[str, list[dict[str, Any]]]) -> str:
    """The points of :func:`budget_points` as a Markdown table."""
    lines = [
        "| method | meta-training steps | seeds | success IQM [95 % CI] | coverage | run folder |",
        "|---|---|---|---|---|---|",
    ]
    for curve in points.values():
        for p in curve:
            coverage = "" if p["coverage"] is None else f"{p['coverage']:.2f}"
            lines.append(
                f"| {p['label']} | {p['steps']:,} | {p['seeds']} | {p['iqm']:.2f} [{p['low']:.2f}, "
                f"{p['high']:.2f}] | {coverage} | {p['folder']} |"
            )
    return "\n".join(lines)
