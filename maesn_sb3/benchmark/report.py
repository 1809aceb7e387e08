"""The benchmark's report: the Markdown table and the figure, rebuilt from the CSV files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from maesn_sb3.benchmark.config import LABELS, METHODS, VERSION_FIELDS, Config
from maesn_sb3.benchmark.results import cell_rows, read_csv
from maesn_sb3.benchmark.stats import (
    bootstrap_ci,
    improvement_ci,
    iqm,
    performance_profile,
    probability_of_improvement,
    score_matrix,
)


def table(rows: list[dict[str, Any]], training: list[dict[str, Any]], config: Config) -> str:
    last = config.adapt_iterations
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    steps = {
        m: max(int(r["env_steps"]) for r in rows if r["method"] == m and int(r["iteration"]) == last)
        for m in methods
    }
    lines = [
        f"| method | seeds | meta-train steps | success, iter 0 | success, iter {last} | "
        f"return, iter {last} | mean success, iter {last} | env steps per task |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        cells = []
        for iteration, key in ((0, "success"), (last, "success"), (last, "return")):
            scores = score_matrix(rows, m, iteration, key)
            low, high = bootstrap_ci(scores)
            cells.append(f"{iqm(scores):.2f} [{low:.2f}, {high:.2f}]")
        train = [int(t["train_steps"]) for t in training if t["method"] == m]
        n_seeds = score_matrix(rows, m, last, "success").shape[0]
        mean_success = float(np.mean(score_matrix(rows, m, last, "success")))
        lines.append(
            f"| {label(m, config)} | {n_seeds} | {int(np.mean(train)) if train else 0:,} | "
            f"{' | '.join(cells)} | {mean_success:.2f} | {steps[m]:,} |"
        )
    return "\n".join(lines)


def improvements(rows: list[dict[str, Any]], config: Config) -> str:
    """P(MAESN > method) on held-out success at the last iteration, with 95 % bootstrap CIs."""
    last = config.adapt_iterations
    methods = [m for m in METHODS if m != "maesn" and any(r["method"] == m for r in rows)]
    if not methods or not any(r["method"] == "maesn" for r in rows):
        return ""
    maesn = score_matrix(rows, "maesn", last, "success")
    lines = [
        f"Probability of improvement, P(MAESN > method) on held-out success at iteration {last} "
        "(per task over all pairs of seeds, ties one half; 0.5 = no difference):",
        "",
        "| method | P(MAESN > method) |",
        "|---|---|",
    ]
    for m in methods:
        other = score_matrix(rows, m, last, "success")
        low, high = improvement_ci(maesn, other)
        lines.append(
            f"| {label(m, config)} | {probability_of_improvement(maesn, other):.2f} [{low:.2f}, {high:.2f}] |"
        )
    return "\n".join(lines)


def plot_profiles(rows: list[dict[str, Any]], config: Config, path: Path) -> None:
    """Performance profiles: the fraction of (seed, task) runs above each success rate, per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    last = config.adapt_iterations
    thresholds = np.linspace(0.0, 1.0, 101)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, iteration in zip(axes, (0, last), strict=True):
        for m in [m for m in METHODS if any(r["method"] == m for r in rows)]:
            fraction, low, high = performance_profile(score_matrix(rows, m, iteration, "success"), thresholds)
            ax.plot(thresholds, fraction, label=label(m, config))
            ax.fill_between(thresholds, low, high, alpha=0.2)
        ax.set_title(f"iteration {iteration}" + (" (before any update)" if iteration == 0 else ""))
        ax.set_xlabel("held-out success rate tau")
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of (seed, task) runs with success > tau")
    axes[1].legend(fontsize=8, title="method", title_fontsize=8)
    fig.suptitle(f"{config.env_id}: performance profiles (95 % bootstrap bands)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot(rows: list[dict[str, Any]], config: Config, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharey="row")
    iterations = np.arange(config.adapt_iterations + 1)
    for m in [m for m in METHODS if any(r["method"] == m for r in rows)]:
        steps = np.array(
            [
                np.mean([int(r["env_steps"]) for r in rows if r["method"] == m and int(r["iteration"]) == k])
                for k in iterations
            ]
        )
        for row, key in enumerate(("return", "success")):
            means, lows, highs = [], [], []
            for k in iterations:
                scores = score_matrix(rows, m, k, key)
                means.append(float(np.mean(scores)))
                low, high = bootstrap_ci(scores, statistic=np.mean, n_resamples=500)
                lows.append(low)
                highs.append(high)
            for col, x in enumerate((iterations, steps)):
                ax = axes[row, col]
                ax.plot(x, means, "o-", ms=3, label=label(m, config))
                ax.fill_between(x, lows, highs, alpha=0.2)
    from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

    for row, key in enumerate(("return", "success rate")):
        axes[row, 0].set_ylabel(f"held-out {key} (sparse reward)")
    axes[1, 0].yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    for col, x_label in enumerate(("adaptation iteration (0: before any update)", "env steps per task")):
        for row in range(2):
            axes[row, col].set_xlabel(x_label)
            axes[row, col].grid(alpha=0.3)
    for row in range(2):
        axes[row, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[row, 1].xaxis.set_major_locator(MaxNLocator(nbins=6))
        axes[row, 1].xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    axes[0, 0].legend(fontsize=8, title="method", title_fontsize=8)
    fig.suptitle(
        f"{config.env_id}: adaptation to {config.n_test_tasks} held-out tasks, "
        f"{config.adapt_episodes} episodes per iteration (mean, 95 % bootstrap CI)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def label(method: str, config: Config) -> str:
    """The method's name in tables and figures; MAML's names its outer update (TRPO, or ProMP's step)."""
    if method == "maml" and config.outer_update == "ppo":
        return "MAML (ProMP)"
    return LABELS[method]


def coverage_table(rows: list[dict[str, str]], config: Config) -> str:
    """The exploration coverage of the held-out tasks per method (mean over seeds, and per seed): the
    fraction of tasks on which one of ``adapt_episodes`` episodes succeeds under latents from the prior
    (mean actions) and under action noise alone (:func:`~maesn_sb3.evaluation.exploration_coverage`)."""
    cells = {(r["method"], int(r["seed"])): r for r in rows}  # a cell run twice: its last row
    if not cells:
        return ""
    lines = [
        f"Exploration coverage of the {config.n_test_tasks} held-out tasks before adaptation: the fraction "
        f"on which at least one of {config.adapt_episodes} episodes succeeds",
        "",
        "| method | latents from the prior, mean actions | action noise alone | per seed (latents / noise) |",
        "|---|---|---|---|",
    ]
    for method in METHODS:
        seeds = sorted(seed for m, seed in cells if m == method)
        if not seeds:
            continue
        latents = [float(cells[method, s]["coverage_latents"]) for s in seeds]
        noise = [float(cells[method, s]["coverage_action_noise"]) for s in seeds]
        per_seed = ", ".join(f"{s}: {a:.2f} / {b:.2f}" for s, a, b in zip(seeds, latents, noise, strict=True))
        means = f"{np.mean(latents):.2f} | {np.mean(noise):.2f}"
        lines.append(f"| {label(method, config)} | {means} | {per_seed} |")
    return "\n".join(lines)


def distance_table(rows: list[dict[str, str]], config: Config) -> str:
    """MAESN's exploration figure as numbers (held-out task 0): the mean distance from the start at the
    end of an episode under latents from the prior (mean actions) and under action noise alone."""
    cells = {int(r["seed"]): r for r in rows if r["method"] == "maesn"}  # a cell run twice: its last row
    if not cells:
        return ""
    seeds = sorted(cells)
    prior = [float(cells[s]["prior_distance"]) for s in seeds]
    noise = [float(cells[s]["noise_distance"]) for s in seeds]
    per_seed = ", ".join(f"{s}: {a:.2f} / {b:.2f}" for s, a, b in zip(seeds, prior, noise, strict=True))
    return "\n".join(
        [
            f"Distance from the start at the end of MAESN's exploration episodes ({config.env_id}, held-out "
            "task 0, the exploration figure's episodes; mean over episodes, then seeds)",
            "",
            "| latents from the prior, mean actions | action noise alone | per seed (latents / noise) |",
            "|---|---|---|",
            f"| {np.mean(prior):.2f} | {np.mean(noise):.2f} | {per_seed} |",
        ]
    )


def versions_note(versions: list[dict[str, Any]], cells: set[tuple[str, int]]) -> str:
    """The package versions the finished ``cells`` ran with (``versions.csv``; a cell's last row), one
    line per distinct set, and the cells without a record (run before it was written); empty for a
    folder without any record."""
    latest = {(r["method"], int(r["seed"])): tuple(r[k] for k in VERSION_FIELDS[2:]) for r in versions}
    groups: dict[tuple[str, ...], list[str]] = {}
    for method, seed in sorted(cells):
        groups.setdefault(latest.get((method, seed), ()), []).append(f"{method} {seed}")
    unrecorded = groups.pop((), [])
    if not groups:
        return ""
    every = len(groups) == 1 and not unrecorded
    lines = [
        "Package versions of the cells (`versions.csv`)"
        + ("" if len(groups) == 1 else ": they differ, and the same seed may score otherwise on each"),
        "",
    ]
    for found, names in groups.items():
        packages = ", ".join(f"{name} {v}" for name, v in zip(VERSION_FIELDS[2:], found, strict=True))
        lines.append(f"- {packages}: " + ("every cell" if every else ", ".join(names)))
    if unrecorded:
        lines.append(f"- not recorded (run before `versions.csv` was written): {', '.join(unrecorded)}")
    return "\n".join(lines)


def report(config: Config, output: Path) -> str:
    finished = cell_rows(read_csv(output / "adaptation.csv"), config)
    rows = [r for cell in finished.values() for r in cell]
    training = read_csv(output / "training.csv")
    if not rows:
        return "no finished cells yet"
    text = table(rows, training, config)
    speed_path = output / "speed.json"
    if speed_path.exists():
        speed = json.loads(speed_path.read_text())
        text += (
            "\n\nMeta-training env steps/s on the same env ("
            + config.env_id
            + ", "
            + f"{config.n_tasks} tasks x {config.envs_per_task} envs, one run): "
            + ", ".join(f"{k} {v:,.0f}" for k, v in speed.items())
        )
    poi = improvements(rows, config)
    if poi:
        text += "\n\n" + poi
    for extra in (
        coverage_table(read_csv(output / "coverage.csv"), config),
        distance_table(read_csv(output / "exploration.csv"), config),
        versions_note(read_csv(output / "versions.csv"), set(finished)),
    ):
        if extra:
            text += "\n\n" + extra
    (output / "adaptation.md").write_text(text + "\n")
    try:
        plot(rows, config, output / "adaptation.png")
        plot_profiles(rows, config, output / "profiles.png")
    except ImportError:
        text += "\n(matplotlib missing: no plot)"
    return text
