"""RL^2 (Duan et al. 2016): sb3-contrib's RecurrentPPO over trials of several episodes of one task."""

from __future__ import annotations

from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback
from stable_baselines3.common.utils import set_random_seed

from maesn_sb3.common.base import (
    AdaptationCurve,
    adaptation_env,
    in_model_torch_threads,
    meta_env_from,
    steps_per_task,
)
from maesn_sb3.common.callbacks import (
    check_task_set,
    draw_task_set,
    find_meta_env,
    resampling_callbacks,
)
from maesn_sb3.tasks import TaskSet
from maesn_sb3.validators import check_episodes, check_int, check_seed
from maesn_sb3.vec_env import MetaTaskVecEnv
from wrappers.rl2 import RL2Wrapper

__all__ = ["RL2"]

SelfRL2 = TypeVar("SelfRL2", bound="RL2")


class RL2(RecurrentPPO):
    """RL^2: an LSTM policy, trained by RecurrentPPO, that adapts by remembering a trial of episodes.

    The env is a :class:`~maesn_sb3.MetaTaskVecEnv` whose sub-envs carry a :class:`~wrappers.RL2Wrapper`
    (previous action, reward and done flag in the observation; ``episodes_per_trial`` episodes of one
    task per trial). ``learn`` gives every task slot a new training task at each rollout
    (:class:`~maesn_sb3.common.callbacks.TaskResamplingCallback`), so set ``n_steps`` to a multiple of the
    trial length. Adaptation has no gradient step: :meth:`adapt` runs trials on the new tasks and
    reports each inner episode as one iteration. Save, load and predict are RecurrentPPO's.

    Example:
        >>> from maesn_sb3 import RL2, make_meta_vec_env
        >>> from wrappers import RL2Wrapper
        >>> env = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=2, envs_per_task=2, seed=0,
        ...                         wrapper_class=RL2Wrapper, wrapper_kwargs={"episodes_per_trial": 2})
        >>> model = RL2("MlpLstmPolicy", env, n_train_tasks=10, n_steps=100, seed=0).learn(400)

    :param policy: ``"MlpLstmPolicy"``, ``"MultiInputLstmPolicy"`` or a recurrent policy class.
    :param env: the MetaTaskVecEnv described above. An env id or a single task env also works, as in SB3:
        it becomes ``make_meta_vec_env(env_id, n_tasks=20, envs_per_task=20, seed=seed,
        wrapper_class=RL2Wrapper, wrapper_kwargs={"episodes_per_trial": 2})``.
    :param task_set: the training tasks (``task_set.train``); None draws ``n_train_tasks`` from the env.
    :param n_train_tasks: number of training tasks drawn when ``task_set`` is None.
    :param kwargs: RecurrentPPO's arguments.
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
        env = meta_env_from(
            env, kwargs.get("seed"), wrapper_class=RL2Wrapper, wrapper_kwargs={"episodes_per_trial": 2}
        )
        if env is not None:
            self._check_env(env)
        check_task_set(task_set)
        self.n_train_tasks = check_int("n_train_tasks", n_train_tasks)
        super().__init__(policy, env, _init_setup_model=_init_setup_model, **kwargs)
        self.task_set = task_set
        if _init_setup_model and task_set is None:
            self.task_set = draw_task_set(self)

    @staticmethod
    def _check_env(env: GymEnv) -> MetaTaskVecEnv:
        meta = find_meta_env(env)
        if not all(meta.env_is_wrapped(RL2Wrapper)):
            raise ValueError(
                "env's sub-envs carry no RL2Wrapper: build the env with "
                "make_meta_vec_env(..., wrapper_class=RL2Wrapper, wrapper_kwargs={'episodes_per_trial': k})"
            )
        return meta

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        self._check_env(env)
        super().set_env(env, force_reset)

    @in_model_torch_threads
    def learn(
        self: SelfRL2,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "RL2",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRL2:
        return super().learn(
            total_timesteps,
            resampling_callbacks(self, callback),
            log_interval,
            tb_log_name,
            reset_num_timesteps,
            progress_bar,
        )

    def _adaptation_env(self, env: GymEnv) -> MetaTaskVecEnv:
        def with_trials(single: gym.Env) -> gym.Env:
            if not is_wrapped(single, RL2Wrapper):
                raise ValueError(
                    "env carries no RL2Wrapper: wrap it with RL2Wrapper(env, episodes_per_trial)"
                )
            return single

        return adaptation_env(env, self._check_env, with_trials, self.observation_space, self.action_space)

    def adapt(
        self,
        env: GymEnv,
        n_iterations: int | None = None,
        episodes_per_iteration: int | None = None,
        seed: int | None = None,
        deterministic: bool = False,
    ) -> AdaptationCurve:
        """Run trials on the task(s) of ``env``; inner episode ``k`` of the trials is iteration ``k``.

        With ``episodes_per_iteration`` trials per task slot (one per sub-env per round), iteration ``k``
        reports the mean return and success of the ``k``-th episode of those trials, so the env steps per
        iteration match :meth:`maesn_sb3.MAESN.adapt` with the same episodes per iteration.

        :param env: a MetaTaskVecEnv with an :class:`~wrappers.RL2Wrapper`, or one wrapped task env.
        :param n_iterations: the trial length minus one (None: read from the env's wrapper); a different
            value is an error, as the trial length is the wrapper's.
        :param episodes_per_iteration: trials per task slot, a multiple of ``env.envs_per_task``.
        :param seed: seeds the env and the action noise (None: the model's seed).
        :param deterministic: act with the mean actions.
        """
        seed = check_seed("seed", seed)
        meta = self._adaptation_env(env)
        trial = int(meta.get_attr("episodes_per_trial", [0])[0])
        if n_iterations is not None and check_int("n_iterations", n_iterations, 0) != trial - 1:
            raise ValueError(
                f"n_iterations must be the env's episodes_per_trial - 1 = {trial - 1}, got {n_iterations}; "
                "build the env with RL2Wrapper(episodes_per_trial=n_iterations + 1)"
            )
        episodes = meta.envs_per_task if episodes_per_iteration is None else episodes_per_iteration
        episodes = check_episodes("episodes_per_iteration", episodes, meta.envs_per_task) * meta.envs_per_task
        seed = self.seed if seed is None else seed
        if seed is not None:
            set_random_seed(seed)
            meta.seed(seed)
        n_envs, n_slots = meta.num_envs, meta.n_tasks
        returns = np.zeros((trial, n_envs * (episodes // meta.envs_per_task)))
        success = np.zeros_like(returns)
        steps = np.zeros(trial, dtype=np.int64)
        self.policy.set_training_mode(False)
        for round_index in range(episodes // meta.envs_per_task):
            columns = round_index * n_envs + np.arange(n_envs)
            obs = meta.reset()
            states, starts = None, np.ones(n_envs, dtype=bool)
            active = np.ones(n_envs, dtype=bool)
            while active.any():
                with th.no_grad():
                    actions, states = self.predict(obs, states, starts, deterministic)
                obs, rewards, dones, infos = meta.step(actions)
                starts = dones
                for i in np.flatnonzero(active):
                    k = infos[i]["trial_episode"]
                    returns[k, columns[i]] += rewards[i]
                    steps[k] += 1
                    if infos[i]["episode_done"]:
                        success[k, columns[i]] = float(bool(infos[i].get("is_success", False)))
                active &= ~dones
        slot_of_column = np.tile(meta.task_indices, episodes // meta.envs_per_task)
        counts = np.bincount(slot_of_column, minlength=n_slots)

        def per_slot(values: np.ndarray) -> np.ndarray:
            return np.stack(
                [np.bincount(slot_of_column, weights=row, minlength=n_slots) / counts for row in values]
            )

        return AdaptationCurve(
            returns=per_slot(returns),
            success=per_slot(success),
            env_steps=steps_per_task(np.cumsum(steps), n_slots),
        )
