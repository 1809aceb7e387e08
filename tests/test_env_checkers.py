"""Gymnasium's and SB3's env checkers on every registered ``maesn_sb3/`` env, raw and with LatentWrapper.

The ids come from Gymnasium's registry, so task families registered later are covered automatically.
"""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.utils.env_checker import data_equivalence
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import maesn_sb3
from maesn_sb3 import check_task_env
from wrappers import LatentWrapper

ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("maesn_sb3/"))


def test_registry_holds_the_task_families() -> None:
    assert "maesn_sb3/PointNav2D-v0" in ENV_IDS
    assert set(maesn_sb3.list_envs()) <= set(ENV_IDS)


@pytest.fixture(autouse=True)
def quiet_checkers():
    # the checkers warn about unbounded observation spaces and checking a wrapped env; not failures
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    gym_check_env(env.unwrapped, skip_render_check=True)
    gym_check_env(LatentWrapper(gym.make(env_id), latent_dim=2), skip_render_check=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env(env_id: str) -> None:
    sb3_check_env(gym.make(env_id), warn=False)
    sb3_check_env(LatentWrapper(gym.make(env_id), latent_dim=3), warn=False)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_recreate_from_spec(env_id: str) -> None:
    env = LatentWrapper(gym.make(env_id), latent_dim=2, mean=[0.5, -0.5], std=0.2)
    copy = gym.make(env.spec)
    assert isinstance(copy, LatentWrapper) and copy.spec == env.spec
    assert copy.observation_space == env.observation_space and copy.action_space == env.action_space
    assert data_equivalence(copy.reset(seed=3), env.reset(seed=3))
    action = env.action_space.sample()
    assert data_equivalence(copy.step(action), env.step(action))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_task_api_is_seeded_and_picklable(env_id: str) -> None:
    """Every family implements the task API; reset(seed) makes its task draws reproducible."""
    draws = []
    for _ in range(2):
        env = gym.make(env_id)
        check_task_env(env)
        env.reset(seed=5)
        draws.append(env.unwrapped.sample_tasks(3))
    assert len(draws[0]) == 3
    assert pickle.dumps(draws[0]) == pickle.dumps(draws[1])
    env.unwrapped.set_task(draws[0][1])
    assert data_equivalence(env.unwrapped.get_task(), draws[0][1])
