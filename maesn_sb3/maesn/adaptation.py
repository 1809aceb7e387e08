"""MAESN's adaptation: the state of one ``adapt`` call and its result, and the adapted latents at work
(the latent wrapper ``adapt`` adds to a single task env, the latents ``predict`` gives observations that
come without one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.env_util import is_wrapped

from maesn_sb3.common.adaptation import AdaptationCurve
from maesn_sb3.validators import check_latent_adaptation_episodes
from wrappers.latent import LatentWrapper, inject_latent

if TYPE_CHECKING:
    from maesn_sb3.common.rollouts import EpisodeBatch
    from maesn_sb3.vec_env import MetaTaskVecEnv

__all__ = ["AdaptationResult", "AdaptedLatentMixin", "LatentAdaptation"]


@dataclass(kw_only=True)
class AdaptationResult(AdaptationCurve):
    """The curve of one call to :meth:`MAESN.adapt`, for each task slot of the adaptation env.

    Row ``k`` of every array describes the latent after ``k`` adaptation steps (row 0: the prior).
    ``returns`` and ``success`` are the means over that iteration's exploration episodes;
    ``eval_returns`` and ``eval_success`` (when evaluated) come from deterministic episodes with the
    mean latent and mean actions. ``env_steps[k]`` counts the exploration steps taken up to and
    including iteration ``k`` (evaluation episodes are not counted). ``latent_means`` and
    ``latent_log_stds`` hold each slot's latent distribution at every iteration.
    """

    latent_means: np.ndarray
    latent_log_stds: np.ndarray


class LatentAdaptation:
    """One call of :meth:`~maesn_sb3.MAESN.adapt` on a ``model``: each task slot's latent distribution,
    from the prior N(0, I), stepped by ``model.adapt_latents``, and its history; ``sample``, ``record`` and
    ``step`` are those of the adaptation loop."""

    def __init__(
        self, model: Any, n_iterations: int, natural_gradient: bool | None, step_scale: float
    ) -> None:
        self.model, self.n_iterations, self.natural_gradient = model, n_iterations, natural_gradient
        self.step_scale = step_scale
        self.mean: th.Tensor | None = None
        self.log_std: th.Tensor | None = None
        self.means: list[np.ndarray] = []
        self.log_stds: list[np.ndarray] = []

    def sample(self, meta: MetaTaskVecEnv, n_rounds: int, deterministic: bool) -> EpisodeBatch:
        model = self.model
        if self.mean is None:  # every slot starts from the prior N(0, I)
            if self.n_iterations:  # checked before any episode
                check_latent_adaptation_episodes(n_rounds * meta.envs_per_task)
            shape = (meta.n_tasks, model.latent_dim)
            self.mean = th.zeros(shape, device=model.device)
            self.log_std = th.zeros(shape, device=model.device)
        batch, _ = model._sample(meta, self.mean, self.log_std, n_rounds, deterministic=deterministic)
        return batch

    def record(self) -> None:
        self.means.append(self.mean.cpu().numpy())
        self.log_stds.append(self.log_std.cpu().numpy())

    def step(self, iteration: int, batch: EpisodeBatch) -> None:
        self.mean, self.log_std = self.model.adapt_latents(
            self.mean, self.log_std, batch, iteration, self.natural_gradient, self.step_scale
        )

    def result(self, curve: dict[str, np.ndarray | None]) -> AdaptationResult:
        """The :class:`AdaptationResult` of the adaptation loop's ``curve`` and the latents' history."""
        return AdaptationResult(
            **curve, latent_means=np.stack(self.means), latent_log_stds=np.stack(self.log_stds)
        )


class AdaptedLatentMixin:
    """The adapted latents of :class:`~maesn_sb3.MAESN` at work, mixed into it: the task env ``adapt``
    samples from, and the latents of ``predict`` (``adapted_latent_mean``, ``adapted_latent_log_std``,
    the prior without adaptation)."""

    def _wrap_task_env(self, env: gym.Env) -> gym.Env:
        """A single task env for :meth:`adapt`, with a latent wrapper unless it has one."""
        return env if is_wrapped(env, LatentWrapper) else LatentWrapper(env, latent_dim=self.latent_dim)

    def _with_latent(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        episode_start: np.ndarray | None,
        deterministic: bool,
        slot: int | None = None,
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Append the held latent to observations that come without one (:func:`~wrappers.inject_latent`)."""
        return inject_latent(
            observation,
            self.observation_space,
            self.latent_dim,
            lambda n: self._predict_latent_rows(n, episode_start, deterministic, slot),
        )

    def _predict_latent_rows(
        self, n: int, episode_start: np.ndarray | None, deterministic: bool, slot: int | None
    ) -> np.ndarray:
        """The latents of ``n`` observation rows, ``(n, latent_dim)``: the adapted mean when deterministic,
        else one draw per row, held until its ``episode_start``."""
        if self.adapted_latent_mean is None:
            mean, std = np.zeros((1, self.latent_dim)), np.ones((1, self.latent_dim))
        else:
            mean, std = self.adapted_latent_mean, np.exp(self.adapted_latent_log_std)
            chosen = self._chosen_slot(slot, len(mean))
            if chosen is not None:
                mean, std = mean[chosen : chosen + 1], std[chosen : chosen + 1]
        if len(mean) not in (1, n):
            raise ValueError(
                f"the model holds {len(mean)} adapted latents; pass slot=k (or set model.predict_slot = k) "
                f"to use task slot k's for every observation, a batch of {len(mean)} observations (row i "
                "uses slot i's), or observations that include their latent"
            )
        if deterministic:
            return np.broadcast_to(mean, (n, self.latent_dim))
        fresh = mean + std * self._predict_rng.standard_normal((n, self.latent_dim))
        if self._predict_latents is None or len(self._predict_latents) != n:
            self._predict_latents = fresh
        elif episode_start is not None:
            starts = np.asarray(episode_start, dtype=bool).reshape(-1)
            self._predict_latents[starts] = fresh[starts]
        return self._predict_latents
