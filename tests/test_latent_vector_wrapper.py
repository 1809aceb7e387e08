"""wrappers.LatentVectorWrapper: the same as a vector of LatentWrappers, bit for bit."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import maesn_sb3  # noqa: F401  (registers the envs)
from tests._vector_equality import assert_same, compare_rollouts, single_envs
from wrappers import LatentVectorWrapper, LatentWrapper

POINT = "maesn_sb3/PointNav2D-v0"
KWARGS = {"goal_radius": 0.3, "max_episode_steps": 5}


def set_goal_and_latent(native: Any, reference: Any, i: int, task: Any) -> None:
    goal, mean, std = task
    if isinstance(native.unwrapped, SyncVectorEnv):
        native.unwrapped.envs[i].unwrapped.set_task({"goal": goal})
    else:
        native.unwrapped.set_task({"goal": goal}, indices=[i])
    native.set_latent_distribution(mean, std, indices=[i])
    reference.unwrapped.envs[i].unwrapped.set_task({"goal": goal})
    reference.unwrapped.envs[i].set_latent_distribution(mean, std)


def tasks(seed: int, n: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-0.3, 0.3, 2), rng.normal(size=3), rng.uniform(0, 2, 3)) for _ in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_vector_of_latent_wrappers_on_the_batched_family(seed: int) -> None:
    native = LatentVectorWrapper(gym.make_vec(POINT, num_envs=4, **KWARGS), latent_dim=3)
    reference = single_envs(POINT, 4, wrap=lambda env: LatentWrapper(env, latent_dim=3), **KWARGS)
    assert native.single_observation_space == reference.single_observation_space
    assert native.observation_space == reference.observation_space
    ended = compare_rollouts(native, reference, tasks(seed, 4), seed, steps=17, set_task=set_goal_and_latent)
    assert ended == 4 * 3
    # forced latents through the reset options, one for all or one per env
    forced = [0.5, -0.5, 2.0]
    assert_same(native.reset(options={"latent": forced}), reference.reset(options={"latent": forced}))
    per_env = np.arange(12.0).reshape(4, 3)
    obs, info = native.reset(options={"latent": per_env})
    np.testing.assert_array_equal(obs[:, 2:], per_env)
    np.testing.assert_array_equal(info["latent"], per_env)


def test_matches_on_gymnasiums_sync_vector_env_in_next_step_mode() -> None:
    def make() -> gym.Env:
        return gym.make(POINT, **KWARGS)

    native = LatentVectorWrapper(SyncVectorEnv([make] * 3), latent_dim=2)
    reference = SyncVectorEnv([lambda: LatentWrapper(make(), latent_dim=2)] * 3)
    assert native.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    goals = [(np.array([0.1, 0.1]), np.zeros(2), np.ones(2))] * 3
    compare_rollouts(native, reference, goals, 3, steps=13, set_task=set_goal_and_latent)


def test_distributions_per_env_and_attributes() -> None:
    envs = LatentVectorWrapper(gym.make_vec(POINT, num_envs=3), latent_dim=2, mean=1.0, std=0.0)
    envs.set_latent_distribution([0.0, 2.0], 0.0, indices=[1])
    _, info = envs.reset(seed=0)
    np.testing.assert_array_equal(info["latent"], [[1, 1], [0, 2], [1, 1]])
    means = np.array([[3.0, 3.0], [4.0, 4.0], [5.0, 5.0]])
    envs.set_latent_distributions(means, np.zeros((3, 2)))
    obs, _ = envs.reset()
    np.testing.assert_array_equal(obs[:, 2:], means)
    np.testing.assert_array_equal(envs.latents, means)
    mean, std = envs.env_attr("latent_distribution", 2)
    np.testing.assert_array_equal(mean, [5.0, 5.0])
    np.testing.assert_array_equal(std, [0.0, 0.0])
    assert envs.spec is not None and envs.spec.id == POINT


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda e: e.set_latent_distribution([0.0], 1.0), ValueError, r"mean must have shape \(2,\)"),
        (lambda e: e.set_latent_distribution(0.0, -1.0), ValueError, "std must be >= 0"),
        (
            lambda e: e.set_latent_distribution(0.0, 1.0, indices=[3]),
            IndexError,
            r"indices must lie in \[0, 3\)",
        ),
        (
            lambda e: e.set_latent_distributions(np.zeros((2, 2)), np.ones((3, 2))),
            ValueError,
            "means must have",
        ),
        (lambda e: e.reset(options={"latent": [1.0]}), ValueError, r"options\['latent'\] must have shape"),
        (lambda e: LatentVectorWrapper(e, latent_dim=0), ValueError, "latent_dim must be an int >= 1, got 0"),
    ],
)
def test_bad_input(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call(LatentVectorWrapper(gym.make_vec(POINT, num_envs=3), latent_dim=2))


def test_dict_observations_match_a_vector_of_latent_wrappers() -> None:
    from tests.test_latent_wrapper import DictObsEnv

    def make() -> gym.Env:
        return gym.wrappers.TimeLimit(DictObsEnv(), max_episode_steps=3)

    native = LatentVectorWrapper(SyncVectorEnv([make] * 2, autoreset_mode=AutoresetMode.SAME_STEP), 2)
    reference = SyncVectorEnv(
        [lambda: LatentWrapper(make(), latent_dim=2)] * 2, autoreset_mode=AutoresetMode.SAME_STEP
    )
    assert native.single_observation_space == reference.single_observation_space
    assert_same(native.reset(seed=4), reference.reset(seed=4))
    for t in range(7):
        actions = np.zeros((2, 2), dtype=np.float32)
        assert_same(native.step(actions), reference.step(actions), f"step {t}")
