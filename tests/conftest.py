"""Shared test envs: the small PointNav2D meta-env, and its Discrete-action and Dict-observation variants.

The thread setting for every run lives in the root ``conftest.py``. Tests import the classes with
``from tests.conftest import DictPoint, DiscretePoint`` or take the fixtures below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import maesn_sb3  # noqa: F401  (registers the task families)
from maesn_sb3 import MetaTaskVecEnv, make_meta_vec_env

ENV_ID = "maesn_sb3/PointNav2D-v0"
#: Two task slots of three envs each, episodes of 8 steps: one meta-iteration phase is 48 env steps.
SMALL: dict[str, Any] = {"n_tasks": 2, "envs_per_task": 3, "env_kwargs": {"max_episode_steps": 8}}


class DiscretePoint(gym.ActionWrapper):
    """PointNav2D with four discrete moves."""

    moves = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], dtype=np.float32)

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.action_space = gym.spaces.Discrete(4)

    def action(self, action: int) -> np.ndarray:
        return self.moves[int(action)]


class DictPoint(gym.ObservationWrapper):
    """PointNav2D with its position under the ``"position"`` key of a Dict observation."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Dict({"position": env.observation_space})

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"position": observation}


def small_meta_env(seed: int = 0, **overrides: Any) -> MetaTaskVecEnv:
    """The small PointNav2D meta-env (:data:`SMALL`), with ``overrides`` (e.g. ``latent_dim=2``)."""
    return make_meta_vec_env(ENV_ID, seed=seed, **{**SMALL, **overrides})


@pytest.fixture
def meta_env() -> Callable[..., MetaTaskVecEnv]:
    """A factory of small PointNav2D meta-envs: ``meta_env(seed=0, **overrides)``."""
    return small_meta_env


@pytest.fixture(params=["discrete", "dict"])
def space_variant(request: pytest.FixtureRequest) -> tuple[type[gym.Wrapper], str]:
    """``(wrapper class, MAESN/MAML policy name)`` of the Discrete-action and Dict-observation variants."""
    return (DiscretePoint, "MlpPolicy") if request.param == "discrete" else (DictPoint, "MultiInputPolicy")
