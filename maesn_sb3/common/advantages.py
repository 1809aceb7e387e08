"""Advantage estimation for episode batches: the linear feature baseline and GAE."""

from __future__ import annotations

import numpy as np


def discounted_returns(rewards: np.ndarray, mask: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted reward-to-go of time-major, padded episodes (shape ``(T, E)``)."""
    returns = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1], dtype=rewards.dtype)
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = (rewards[t] + gamma * running) * mask[t]
        returns[t] = running
    return returns


def gae_advantages(
    rewards: np.ndarray, values: np.ndarray, mask: np.ndarray, gamma: float, gae_lambda: float
) -> np.ndarray:
    """Generalised advantage estimates (shape ``(T, E)``); an episode's value after its end is 0."""
    advantages = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1], dtype=rewards.dtype)
    next_values = np.zeros(rewards.shape[1], dtype=rewards.dtype)
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * next_values - values[t]
        running = (delta + gamma * gae_lambda * running) * mask[t]
        advantages[t] = running
        next_values = values[t] * mask[t]
    return advantages


def normalize_per_task(advantages: np.ndarray, mask: np.ndarray, task_slot: np.ndarray) -> np.ndarray:
    """Advantages ``(T, E)`` centred and scaled to unit std over each task's valid steps (0 elsewhere).

    :param task_slot: ``(E,)`` the task (slot) of each episode.
    """
    normalized = np.zeros(advantages.shape, dtype=np.float64)
    valid = mask.astype(bool)
    for slot in np.unique(task_slot):
        cells = valid & (task_slot == slot)[None, :]
        values = advantages[cells].astype(np.float64)
        normalized[cells] = (values - values.mean()) / (values.std() + 1e-8)
    return normalized


class LinearFeatureBaseline:
    """Least-squares fit of returns on ``[s, s^2, t, t^2, t^3, 1]`` (``t`` = step / 100), per task.

    The reference implementation's baseline, refit on every batch of a task's episodes.

    :param reg_coeff: ridge coefficient, multiplied by 10 while the solve is not finite.
    """

    def __init__(self, reg_coeff: float = 1e-5) -> None:
        if not reg_coeff > 0:
            raise ValueError(f"reg_coeff must be > 0, got {reg_coeff!r}")
        self.reg_coeff = reg_coeff

    @staticmethod
    def features(states: np.ndarray) -> np.ndarray:
        """Features of time-major states ``(T, E, D)`` -> ``(T, E, 2D + 4)``."""
        clipped = np.clip(states, -10.0, 10.0).astype(np.float64)
        time = np.broadcast_to((np.arange(states.shape[0]) / 100.0)[:, None, None], (*states.shape[:2], 1))
        return np.concatenate([clipped, clipped**2, time, time**2, time**3, np.ones_like(time)], axis=-1)

    def fit_predict(
        self, states: np.ndarray, returns: np.ndarray, mask: np.ndarray, groups: np.ndarray, n_groups: int
    ) -> np.ndarray:
        """Fit one linear model per group of episodes and return its predictions ``(T, E)``.

        :param states: ``(T, E, D)``; :param returns: ``(T, E)``; :param mask: ``(T, E)``;
        :param groups: ``(E,)`` group (task) of each episode, in ``[0, n_groups)``.
        """
        predictions = np.zeros(returns.shape, dtype=np.float32)
        for group in range(n_groups):
            episodes = np.flatnonzero(groups == group)
            if episodes.size == 0:
                continue
            group_mask = mask[:, episodes, None]
            x = (self.features(states[:, episodes]) * group_mask).reshape(-1, 2 * states.shape[-1] + 4)
            y = (returns[:, episodes] * mask[:, episodes]).reshape(-1).astype(np.float64)
            gram, rhs = x.T @ x, x.T @ y
            eye = np.eye(len(rhs))
            reg = self.reg_coeff
            for _ in range(5):
                try:
                    weights = np.linalg.solve(gram + reg * eye, rhs)
                except np.linalg.LinAlgError:
                    weights = np.full_like(rhs, np.nan)
                if np.all(np.isfinite(weights)):
                    break
                reg *= 10
            else:
                weights = np.zeros_like(rhs)
            predictions[:, episodes] = (x @ weights).reshape(group_mask.shape[:2])
        return predictions
