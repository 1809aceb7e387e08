"""Callbacks that let SB3's own algorithms (PPO, RecurrentPPO) train on a task distribution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.vec_env import VecEnv, unwrap_vec_wrapper

from maesn_sb3.tasks import TaskSet
from maesn_sb3.vec_env import MetaTaskVecEnv

__all__ = ["TaskResamplingCallback", "find_meta_env", "resampling_callbacks", "task_seed", "with_callback"]


def find_meta_env(env: VecEnv | None) -> MetaTaskVecEnv:
    """The :class:`MetaTaskVecEnv` in a chain of VecEnv wrappers (``TypeError`` if there is none)."""
    meta = unwrap_vec_wrapper(env, MetaTaskVecEnv)
    if meta is not None:
        return meta
    raise TypeError(f"env must be (or wrap) a MetaTaskVecEnv, got {type(env).__name__}")


class TaskResamplingCallback(BaseCallback):
    """Gives every task slot a new training task at the start of each rollout, then resets the env.

    This is how an SB3 on-policy algorithm (PPO, RecurrentPPO) trains on a task distribution with a
    :class:`~maesn_sb3.MetaTaskVecEnv`: tasks change through ``set_tasks`` (``env_method``), and the
    reset starts every sub-env on its new task (recurrent states restart with ``episode_start``).
    Choose ``n_steps`` as a multiple of the episode length (of the trial length for RL^2) so that no
    episode is cut by the reset.

    Example:
        >>> from stable_baselines3 import PPO
        >>> from maesn_sb3 import TaskSet, make_meta_vec_env
        >>> tasks = TaskSet.from_env("maesn_sb3/PointNav2D-v0", n_train=10, n_test=0, seed=0)
        >>> env = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=2, envs_per_task=2, tasks=tasks)
        >>> _ = PPO("MlpPolicy", env, n_steps=50).learn(200, callback=TaskResamplingCallback(tasks.train))

    :param tasks: the training tasks to draw from.
    :param seed: seeds the draws.
    """

    def __init__(self, tasks: Sequence[Any], seed: int | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.tasks = list(tasks)
        if not self.tasks:
            raise ValueError("tasks must hold at least one task, got an empty sequence")
        self.rng = np.random.default_rng(seed)

    def _on_rollout_start(self) -> None:
        meta = find_meta_env(self.training_env)
        picks = self.rng.choice(len(self.tasks), size=meta.n_tasks, replace=len(self.tasks) < meta.n_tasks)
        meta.set_tasks([self.tasks[i] for i in picks])
        self.model._last_obs = self.training_env.reset()
        self.model._last_episode_starts = np.ones(self.training_env.num_envs, dtype=bool)

    def _on_step(self) -> bool:
        return True


def task_seed(model: Any) -> int | None:
    """Seed of a ``learn`` call's task draws: the model's seed moved on by the steps done so far."""
    return None if model.seed is None else model.seed * 1_000_003 + model.num_timesteps


def with_callback(first: BaseCallback, callback: MaybeCallback) -> CallbackList:
    """``first`` followed by the user's callback(s), as one ``CallbackList``."""
    if callback is None:
        return CallbackList([first])
    if isinstance(callback, list):
        return CallbackList([first, *callback])
    if not isinstance(callback, BaseCallback):
        callback = ConvertCallback(callback)
    return CallbackList([first, callback])


def check_task_set(task_set: TaskSet | None) -> None:
    """A ``task_set`` argument must be a :class:`~maesn_sb3.TaskSet` or None."""
    if task_set is not None and not isinstance(task_set, TaskSet):
        raise TypeError(f"task_set must be a TaskSet or None, got {type(task_set).__name__}")


def draw_task_set(model: Any) -> TaskSet:
    """``model.n_train_tasks`` training tasks drawn from its env (the seeds consumed first, so the draw
    reproduces), for an SB3 algorithm over a task set built without one."""
    meta = find_meta_env(model.env)
    meta.reset()
    return TaskSet(train=meta.sample_tasks(model.n_train_tasks), test=[])


def resampling_callbacks(model: Any, callback: MaybeCallback) -> CallbackList:
    """What ``learn`` of an SB3 algorithm over a task set runs: a :class:`TaskResamplingCallback` over
    ``model.task_set.train`` (seeded by :func:`task_seed`), then the user's ``callback``."""
    return with_callback(TaskResamplingCallback(model.task_set.train, seed=task_seed(model)), callback)
