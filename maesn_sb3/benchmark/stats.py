"""Aggregate scores as rliable does (numpy only): interquartile mean, stratified-bootstrap CIs."""

from __future__ import annotations

from typing import Any

import numpy as np


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % of the scores (25 % trimmed at each end)."""
    flat = np.sort(np.asarray(scores, dtype=float).ravel())
    cut = int(np.floor(0.25 * flat.size))
    return float(flat[cut : flat.size - cut].mean())


def bootstrap_ci(
    scores: np.ndarray, statistic: Any = iqm, n_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Stratified bootstrap CI of ``statistic`` over a ``(n_seeds, n_tasks)`` score matrix: the seeds
    are resampled with replacement independently for each task (rliable's ``StratifiedBootstrap``)."""
    scores = np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    n_seeds, n_tasks = scores.shape
    picks = rng.integers(0, n_seeds, size=(n_resamples, n_seeds, n_tasks))
    samples = np.take_along_axis(scores[None].repeat(n_resamples, 0), picks, axis=1)
    values = np.array([statistic(sample) for sample in samples])
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def score_matrix(rows: list[dict[str, Any]], method: str, iteration: int, key: str) -> np.ndarray:
    """``(n_seeds, n_tasks)`` scores of one method at one iteration."""
    selected = [r for r in rows if r["method"] == method and int(r["iteration"]) == iteration]
    seeds = sorted({int(r["seed"]) for r in selected})
    tasks = sorted({int(r["task"]) for r in selected})
    matrix = np.full((len(seeds), len(tasks)), np.nan)
    for r in selected:
        matrix[seeds.index(int(r["seed"])), tasks.index(int(r["task"]))] = float(r[key])
    return matrix
