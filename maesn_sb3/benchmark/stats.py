"""Aggregate scores as rliable does (numpy only): interquartile mean, stratified-bootstrap CIs,
probability of improvement and performance profiles (Agarwal et al., 2021).

Scores are ``(n_seeds, n_tasks)`` matrices: the held-out tasks play rliable's tasks, the seeds its runs.
"""

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
    samples = _resample(np.asarray(scores, dtype=float), np.random.default_rng(seed), n_resamples)
    values = np.array([statistic(sample) for sample in samples])
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def _resample(scores: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """``n_resamples`` stratified bootstrap copies of a score matrix (seeds resampled per task)."""
    n_seeds, n_tasks = scores.shape
    picks = rng.integers(0, n_seeds, size=(n_resamples, n_seeds, n_tasks))
    return np.take_along_axis(scores[None].repeat(n_resamples, 0), picks, axis=1)


def improvement_outcomes(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """The fractions of pairs of X's and Y's runs of the same task in which X scores higher, the same
    and lower, per task over all pairs, averaged over the tasks: ``(wins, ties, losses)``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must score the same tasks, got {x.shape[1]} and {y.shape[1]} tasks")
    greater = (x[:, None, :] > y[None, :, :]).mean()  # every task has the same number of pairs
    ties = (x[:, None, :] == y[None, :, :]).mean()
    losses = (x[:, None, :] < y[None, :, :]).mean()  # counted, not 1 - wins - ties (printed -0.00)
    return float(greater), float(ties), float(losses)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): per task the Mann-Whitney statistic over all pairs of X's and Y's runs (ties count
    one half), averaged over the tasks (rliable's ``probability_of_improvement``)."""
    wins, ties, _ = improvement_outcomes(x, y)
    return wins + 0.5 * ties


def improvement_ci(
    x: np.ndarray, y: np.ndarray, n_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Bootstrap CI of :func:`probability_of_improvement`, X's and Y's runs resampled independently."""
    rng = np.random.default_rng(seed)
    xs = _resample(np.asarray(x, dtype=float), rng, n_resamples)
    ys = _resample(np.asarray(y, dtype=float), rng, n_resamples)
    values = np.array([probability_of_improvement(a, b) for a, b in zip(xs, ys, strict=True)])
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def performance_profile(
    scores: np.ndarray, thresholds: np.ndarray, n_resamples: int = 500, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fraction of (seed, task) runs scoring above each threshold (rliable's run-score
    distribution), with its stratified-bootstrap 95 % band: ``(fraction, low, high)``."""
    scores = np.asarray(scores, dtype=float)

    def profile(matrix: np.ndarray) -> np.ndarray:
        return (matrix.reshape(-1, 1) > thresholds[None, :]).mean(axis=0)

    samples = np.array([profile(m) for m in _resample(scores, np.random.default_rng(seed), n_resamples)])
    return profile(scores), np.quantile(samples, 0.025, axis=0), np.quantile(samples, 0.975, axis=0)


def score_matrix(rows: list[dict[str, Any]], method: str, iteration: int, key: str) -> np.ndarray:
    """``(n_seeds, n_tasks)`` scores of one method at one iteration."""
    selected = [r for r in rows if r["method"] == method and int(r["iteration"]) == iteration]
    seeds = sorted({int(r["seed"]) for r in selected})
    tasks = sorted({int(r["task"]) for r in selected})
    matrix = np.full((len(seeds), len(tasks)), np.nan)
    for r in selected:
        matrix[seeds.index(int(r["seed"])), tasks.index(int(r["task"]))] = float(r[key])
    return matrix
