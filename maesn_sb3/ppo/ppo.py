"""Baselines of the MAESN paper built on plain SB3: multi-task PPO (fine-tuned) and PPO from scratch.

Both adapt to a held-out task by running ordinary SB3 PPO on that task alone, one model per task
slot of a :class:`~maesn_sb3.MetaTaskVecEnv`, and report the same per-iteration curve as
:meth:`maesn_sb3.MAESN.adapt` (:class:`AdaptationCurve`), so that every method is compared at the
same number of environment steps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from maesn_sb3.common.base import AdaptationCurve, in_model_torch_threads, meta_env_from
from maesn_sb3.common.callbacks import (
    check_task_set,
    draw_task_set,
    find_meta_env,
    resampling_callbacks,
)
from maesn_sb3.tasks import TaskSet
from maesn_sb3.validators import check_int, check_seed
from maesn_sb3.vec_env import MetaTaskVecEnv

__all__ = ["MultiTaskPPO", "finetune_ppo", "ppo_from_scratch"]

SelfMultiTaskPPO = TypeVar("SelfMultiTaskPPO", bound="MultiTaskPPO")


class _RolloutRecorder(BaseCallback):
    """Collects the episodes that end in each rollout: returns, success and the step count."""

    def __init__(self) -> None:
        super().__init__()
        self.returns: list[list[float]] = []
        self.success: list[list[float]] = []
        self.steps: list[int] = []

    def _on_rollout_start(self) -> None:
        self.returns.append([])
        self.success.append([])

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
            if done and "episode" in info:
                self.returns[-1].append(float(info["episode"]["r"]))
                self.success[-1].append(float(bool(info.get("is_success", False))))
        return True

    def _on_rollout_end(self) -> None:
        self.steps.append(self.num_timesteps)


def _slot_env(meta: MetaTaskVecEnv, slot: int) -> MetaTaskVecEnv:
    """A MetaTaskVecEnv over the sub-envs of one slot (they are shared, not copied)."""
    backend = meta.venv
    if not isinstance(backend, DummyVecEnv):
        raise TypeError(
            "fine-tuning one model per task slot needs a MetaTaskVecEnv over a DummyVecEnv of single envs: "
            'build it with make_meta_vec_env(..., vectorization="dummy"); got a backend '
            f"{type(backend).__name__}"
        )
    envs = [backend.envs[i] for i in meta.env_indices_of(slot)]
    view = DummyVecEnv([functools.partial(lambda env: env, env) for env in envs])
    return MetaTaskVecEnv(view, 1, len(envs), [meta.tasks[slot]], meta.success_key, meta.success_mode)


def _per_task_ppo(
    make_model: Callable[[MetaTaskVecEnv, int, int | None], PPO],
    env: MetaTaskVecEnv,
    n_iterations: int,
    episodes_per_iteration: int | None,
    seed: int | None,
) -> AdaptationCurve:
    if not isinstance(env, MetaTaskVecEnv):
        raise TypeError(f"env must be a MetaTaskVecEnv, got {type(env).__name__}")
    n_iterations = check_int("n_iterations", n_iterations, minimum=0)
    seed = check_seed("seed", seed)
    episodes = env.envs_per_task if episodes_per_iteration is None else episodes_per_iteration
    episodes = check_int("episodes_per_iteration", episodes)
    if episodes % env.envs_per_task:
        raise ValueError(
            f"episodes_per_iteration must be a multiple of env.envs_per_task = {env.envs_per_task}, "
            f"got {episodes}"
        )
    n_steps = episodes // env.envs_per_task * env.horizon  # a TimeLimit's (with or without a spec)
    returns = np.zeros((n_iterations + 1, env.n_tasks))
    success = np.zeros((n_iterations + 1, env.n_tasks))
    env_steps = None
    for slot in range(env.n_tasks):
        slot_env = _slot_env(env, slot)
        slot_seed = None if seed is None else seed + slot
        slot_env.seed(slot_seed)
        model = make_model(slot_env, n_steps, slot_seed)
        recorder = _RolloutRecorder()
        model.learn((n_iterations + 1) * n_steps * env.envs_per_task, callback=recorder)
        for k in range(n_iterations + 1):
            if not recorder.returns[k]:
                raise RuntimeError(
                    f"no episode ended in rollout {k}: are the episodes longer than max_episode_steps?"
                )
            returns[k, slot] = np.mean(recorder.returns[k])
            success[k, slot] = np.mean(recorder.success[k])
        env_steps = np.asarray(recorder.steps[: n_iterations + 1])
    return AdaptationCurve(returns=returns, success=success, env_steps=env_steps)


#: PPO settings for the per-task runs: one PPO update per adaptation iteration of
#: ``episodes_per_iteration`` episodes, as the MAESN paper's "learning from scratch" does per TRPO step.
PER_TASK_PPO_DEFAULTS: dict[str, Any] = {"n_epochs": 10, "gae_lambda": 0.95, "ent_coef": 0.0}


def ppo_from_scratch(
    env: MetaTaskVecEnv,
    n_iterations: int = 10,
    episodes_per_iteration: int | None = None,
    seed: int | None = None,
    policy: str = "MlpPolicy",
    **ppo_kwargs: Any,
) -> AdaptationCurve:
    """Train a fresh SB3 PPO on each task slot of ``env`` (typically with the sparse reward).

    Each iteration is one PPO rollout of ``episodes_per_iteration`` episodes followed by one PPO update,
    so iteration ``k`` reports the episodes played after ``k`` updates, at the same env steps as
    :meth:`maesn_sb3.MAESN.adapt`.

    :param env: a MetaTaskVecEnv over a ``DummyVecEnv`` (each slot's sub-envs train one model; build it
        with ``make_meta_vec_env(..., vectorization="dummy")``).
    :param n_iterations: PPO updates; ``n_iterations + 1`` rollouts are played.
    :param episodes_per_iteration: episodes per task and iteration, a multiple of ``env.envs_per_task``.
    :param seed: seeds each slot's model and envs (slot ``i`` gets ``seed + i``).
    :param ppo_kwargs: PPO arguments (``n_steps`` is set from the episodes; ``batch_size`` defaults to a
        quarter of a rollout).
    """

    def make(slot_env: MetaTaskVecEnv, n_steps: int, slot_seed: int | None) -> PPO:
        kwargs = {
            **PER_TASK_PPO_DEFAULTS,
            "batch_size": max(n_steps * slot_env.num_envs // 4, 2),
            **ppo_kwargs,
        }
        return PPO(policy, slot_env, n_steps=n_steps, seed=slot_seed, **kwargs)

    return _per_task_ppo(make, env, n_iterations, episodes_per_iteration, seed)


def ppo_settings(model: PPO) -> dict[str, Any]:
    """The PPO hyperparameters a fine-tuned copy of ``model`` inherits."""
    names = ("learning_rate", "gamma", "gae_lambda", "n_epochs", "ent_coef", "vf_coef", "clip_range")
    return {
        **{name: getattr(model, name) for name in names},
        "max_grad_norm": model.max_grad_norm,
        "policy_kwargs": model.policy_kwargs,
        "device": model.device,
    }


def finetune_ppo(
    model: PPO,
    env: MetaTaskVecEnv,
    n_iterations: int = 10,
    episodes_per_iteration: int | None = None,
    seed: int | None = None,
    **ppo_kwargs: Any,
) -> AdaptationCurve:
    """Fine-tune a copy of ``model``'s policy with PPO on each task slot of ``env`` (``model`` is untouched).

    Same schedule as :func:`ppo_from_scratch`; the copies keep ``model``'s PPO hyperparameters unless
    overridden by ``ppo_kwargs``.
    """
    if not isinstance(model, PPO):
        raise TypeError(f"model must be a stable_baselines3 PPO, got {type(model).__name__}")
    parameters = model.get_parameters()
    inherited = ppo_settings(model)

    def make(slot_env: MetaTaskVecEnv, n_steps: int, slot_seed: int | None) -> PPO:
        kwargs = {"batch_size": max(n_steps * slot_env.num_envs // 4, 2), **inherited, **ppo_kwargs}
        copy = PPO(model.policy_class, slot_env, n_steps=n_steps, seed=slot_seed, **kwargs)
        copy.set_parameters(parameters, exact_match=False)
        return copy

    return _per_task_ppo(make, env, n_iterations, episodes_per_iteration, seed)


class MultiTaskPPO(PPO):
    """PPO trained on a distribution of tasks (the paper's multi-task baseline), fine-tuned per task.

    ``learn`` draws new training tasks for the :class:`~maesn_sb3.MetaTaskVecEnv`'s slots at every
    rollout (:class:`TaskResamplingCallback`); :meth:`adapt` fine-tunes a copy per held-out task with
    :func:`finetune_ppo`. Save, load and predict are PPO's.

    Example:
        >>> from maesn_sb3 import MultiTaskPPO, TaskSet, make_meta_vec_env
        >>> tasks = TaskSet.from_env("maesn_sb3/PointNav2D-v0", n_train=10, n_test=1, seed=0)
        >>> env = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=2, envs_per_task=2, tasks=tasks)
        >>> model = MultiTaskPPO("MlpPolicy", env, task_set=tasks, n_steps=50, seed=0).learn(400)

    :param env: a :class:`~maesn_sb3.MetaTaskVecEnv`, or an env id or a single task env (made into one
        with ``META_ENV_DEFAULTS``, as the meta-algorithms do).
    :param task_set: the training tasks (``task_set.train``); None draws ``n_train_tasks`` from the env.
    :param n_train_tasks: number of training tasks drawn when ``task_set`` is None.
    :param kwargs: PPO's arguments.
    """

    #: torch's threads while ``learn`` runs (restored after; None: torch's own), as MetaAlgorithm's
    n_torch_threads: int | None = 1

    def __init__(
        self,
        policy: Any,
        env: GymEnv | None,
        task_set: TaskSet | None = None,
        n_train_tasks: int = 100,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        env = meta_env_from(env, kwargs.get("seed"))
        if env is not None:
            find_meta_env(env)
        check_task_set(task_set)
        self.n_train_tasks = check_int("n_train_tasks", n_train_tasks)
        super().__init__(policy, env, _init_setup_model=_init_setup_model, **kwargs)
        self.task_set = task_set
        if _init_setup_model and task_set is None:
            self.task_set = draw_task_set(self)

    @in_model_torch_threads
    def learn(
        self: SelfMultiTaskPPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "MultiTaskPPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMultiTaskPPO:
        return super().learn(
            total_timesteps,
            resampling_callbacks(self, callback),
            log_interval,
            tb_log_name,
            reset_num_timesteps,
            progress_bar,
        )

    def adapt(
        self,
        env: MetaTaskVecEnv,
        n_iterations: int = 10,
        episodes_per_iteration: int | None = None,
        seed: int | None = None,
        **ppo_kwargs: Any,
    ) -> AdaptationCurve:
        """Fine-tune a copy of this policy on each task slot of ``env`` (see :func:`finetune_ppo`)."""
        return finetune_ppo(
            self, env, n_iterations, episodes_per_iteration, self.seed if seed is None else seed, **ppo_kwargs
        )
