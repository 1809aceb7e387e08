"""Evaluating a latent-conditioned policy with chosen latents (as SB3's ``evaluate_policy`` for a policy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.utils import set_random_seed

from maesn_sb3.common.remote import collector_for
from maesn_sb3.vec_env import MetaTaskVecEnv

__all__ = ["LATENT_SOURCES", "ExplorationCoverage", "evaluate_latents", "exploration_coverage"]

LATENT_SOURCES = ("prior", "trained", "adapted")


def evaluate_latents(
    model: Any,
    env: MetaTaskVecEnv,
    latent: str = "prior",
    deterministic: bool = False,
    n_rounds: int = 1,
    seed: int | None = None,
    on_step: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean return and success per task slot of ``env`` of a MAESN model's policy with the latents of
    ``latent``: ``"prior"`` (N(0, I)), ``"trained"`` (the meta-trained latents of training tasks
    ``0 .. n_tasks - 1``) or ``"adapted"`` (those of the last :meth:`~maesn_sb3.MAESN.adapt`).

    Runs ``n_rounds`` episodes per sub-env; ``deterministic`` uses the latents' means and the mean
    actions. ``on_step`` gets every vectorised step (see :func:`~maesn_sb3.common.rollouts.collect_episodes`).

    Example:
        >>> from maesn_sb3 import MAESN, make_meta_vec_env
        >>> env = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=2, envs_per_task=2,
        ...                         latent_dim=2, seed=0)
        >>> model = MAESN("MlpPolicy", env, n_train_tasks=4, seed=0)
        >>> returns, success = evaluate_latents(model, env, "prior", seed=0)
        >>> returns.shape, success.shape
        ((2,), (2,))
    """
    if latent not in LATENT_SOURCES:
        raise ValueError(f"latent must be one of {LATENT_SOURCES}, got {latent!r}")
    n_tasks, dim = env.n_tasks, model.latent_dim
    if latent == "trained":
        if n_tasks > len(model.task_set.train):
            raise ValueError(
                f"env has {n_tasks} task slots, the model {len(model.task_set.train)} training tasks"
            )
        with th.no_grad():
            means = model.latents.means[:n_tasks].cpu().numpy()
            stds = model.latents.log_stds[:n_tasks].exp().cpu().numpy()
    elif latent == "adapted":
        if model.adapted_latent_mean is None:
            raise ValueError("latent='adapted' needs a model that has adapted: call model.adapt(env) first")
        means, stds = model.adapted_latent_mean, np.exp(model.adapted_latent_log_std)
        if len(means) != n_tasks:
            raise ValueError(f"the model holds {len(means)} adapted latents, env has {n_tasks} task slots")
    else:
        means, stds = np.zeros((n_tasks, dim)), np.ones((n_tasks, dim))
    if deterministic:
        stds = np.zeros_like(stds)
    if seed is not None:
        set_random_seed(seed)
        env.seed(seed)
    env.set_latent_distributions(means, stds)
    batch, _ = collector_for(env)(env, model.policy, n_rounds, deterministic, on_step)
    returns = batch.per_task(batch.episode_returns, n_tasks)
    success = batch.per_task(batch.success.astype(float), n_tasks)
    return returns, success


class ExplorationCoverage(NamedTuple):
    """Fractions of task slots on which at least one episode succeeded (see :func:`exploration_coverage`)."""

    latents: float  #: latents drawn from the prior, mean actions
    action_noise: float  #: the prior's mean latent, actions sampled from the policy


def exploration_coverage(model: Any, env: MetaTaskVecEnv, seed: int | None = None) -> ExplorationCoverage:
    """How much of a task distribution a MAESN model's exploration reaches before any adaptation: the
    fraction of ``env``'s task slots on which at least one of its ``envs_per_task`` episodes succeeds,
    (1) with one latent per episode drawn from the prior N(0, I) and the policy's mean actions, the
    structured noise MAESN meta-learns, and (2) with the prior's mean latent and actions sampled from
    the policy, action noise alone. ``seed`` seeds both runs alike.

    Example:
        >>> from maesn_sb3 import MAESN, make_meta_vec_env
        >>> env = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=3, envs_per_task=4,
        ...                         latent_dim=2, seed=0)
        >>> coverage = exploration_coverage(MAESN("MlpPolicy", env, n_train_tasks=4, seed=0), env, seed=0)
        >>> 0 <= coverage.latents <= 1 and 0 <= coverage.action_noise <= 1
        True
    """
    zeros = np.zeros((env.n_tasks, model.latent_dim))
    fractions = []
    for stds, deterministic in ((np.ones_like(zeros), True), (zeros, False)):
        if seed is not None:
            set_random_seed(seed)
            env.seed(seed)
        env.set_latent_distributions(zeros, stds)
        batch, _ = collector_for(env)(env, model.policy, 1, deterministic, None)
        success = batch.per_task(batch.success.astype(float), env.n_tasks)
        fractions.append(float((success > 0).mean()))
    return ExplorationCoverage(*fractions)
