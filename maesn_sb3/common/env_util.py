"""What an ``env`` argument of a meta-algorithm becomes: the constructor's (:func:`meta_env_from`) and
``adapt``'s (:func:`adaptation_env`), both a :class:`~maesn_sb3.MetaTaskVecEnv`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from stable_baselines3.common.type_aliases import GymEnv
from stable_baselines3.common.utils import check_for_correct_spaces
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from maesn_sb3.tasks import check_task_env
from maesn_sb3.vec_env import MetaTaskVecEnv, make_meta_vec_env

__all__ = ["META_ENV_DEFAULTS", "adaptation_env", "meta_env_from"]


#: What an env id or a single task env passed to an algorithm's constructor becomes:
#: ``make_meta_vec_env(env, n_tasks=20, envs_per_task=20, seed=seed)`` (MAESN and LSBaseline add
#: ``latent_dim=2``, RL2 an ``RL2Wrapper`` with ``episodes_per_trial=2``). The README's quickstart uses
#: the same sizes; build the env yourself with :func:`~maesn_sb3.make_meta_vec_env` for others.
META_ENV_DEFAULTS: dict[str, int] = {"n_tasks": 20, "envs_per_task": 20}


def meta_env_from(env: GymEnv | str | None, seed: int | None = None, **make_kwargs: Any) -> GymEnv | None:
    """``env`` as the meta-algorithms take it, SB3-style: an env id (``"maesn_sb3/PointNav2D-v0"``, or
    Gymnasium's ``"module:EnvId"``) or a single task env made by ``gymnasium.make`` becomes
    ``make_meta_vec_env(id, **META_ENV_DEFAULTS, seed=seed, **make_kwargs)``; anything else (a
    :class:`MetaTaskVecEnv`, None) is returned as it is, for the algorithm's own checks."""
    if isinstance(env, str):
        make: str | Callable[[], gym.Env] = env
    elif isinstance(env, gym.Env):
        check_task_env(env)
        if env.spec is None:
            raise TypeError(
                f"env {type(env).__name__} has no spec to make more copies from: pass its registered id, or "
                "build a MetaTaskVecEnv with maesn_sb3.make_meta_vec_env(make_env, n_tasks, envs_per_task)"
            )
        make = functools.partial(gym.make, env.spec)
    else:
        return env
    return make_meta_vec_env(make, **{**META_ENV_DEFAULTS, **make_kwargs}, seed=seed)


def adaptation_env(
    env: GymEnv,
    check_meta: Callable[[MetaTaskVecEnv], Any],
    wrap: Callable[[gym.Env], gym.Env] = lambda env: env,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
) -> MetaTaskVecEnv:
    """The env that ``adapt`` samples from: ``env`` itself when it is a :class:`MetaTaskVecEnv` (checked
    by ``check_meta``), or one task env (through ``wrap``) as a one-slot :class:`MetaTaskVecEnv`."""
    if isinstance(env, MetaTaskVecEnv):
        check_meta(env)
        meta = env
    elif isinstance(env, VecEnv):
        raise TypeError(f"env must be a MetaTaskVecEnv or a single gymnasium.Env, got {type(env).__name__}")
    elif isinstance(env, gym.Env):
        check_task_env(env)
        single = wrap(env)
        meta = MetaTaskVecEnv(DummyVecEnv([lambda: single]), n_tasks=1)
    else:
        raise TypeError(f"env must be a MetaTaskVecEnv or a gymnasium.Env, got {type(env).__name__}")
    if observation_space is not None and action_space is not None:
        check_for_correct_spaces(meta, observation_space, action_space)
    return meta
