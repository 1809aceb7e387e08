"""Natively batched task families: step-by-step equality with the single envs, task API, bad input."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import maesn_sb3  # noqa: F401  (registers the envs)
from maesn_sb3.envs.point_nav_vector import PointNav2DVectorEnv
from tests._vector_equality import assert_same, compare_rollouts, single_envs

POINT = "maesn_sb3/PointNav2D-v0"


def set_goal(native: gym.vector.VectorEnv, reference: gym.vector.VectorEnv, i: int, task: Any) -> None:
    native.unwrapped.set_task(task, indices=[i])
    reference.unwrapped.envs[i].unwrapped.set_task(task)


@pytest.mark.parametrize("reward_type", ["dense", "sparse"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_nav_batch_equals_single_envs(reward_type: str, seed: int) -> None:
    kwargs = {"reward_type": reward_type, "goal_radius": 0.3, "max_episode_steps": 7}
    native = gym.make_vec(POINT, num_envs=8, vectorization_mode="vector_entry_point", **kwargs)
    reference = single_envs(POINT, 8, **kwargs)
    assert isinstance(native.unwrapped, PointNav2DVectorEnv)
    assert native.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert native.single_observation_space == reference.single_observation_space
    assert native.single_action_space == reference.single_action_space
    rng = np.random.default_rng(seed)
    # goals close to the origin so that random walks reach some of them (sparse reward, success)
    tasks = [{"goal": rng.uniform(-0.3, 0.3, size=2)} for _ in range(8)]
    ended = compare_rollouts(native, reference, tasks, seed, steps=40, set_task=set_goal)
    assert ended == 8 * (40 // 7)
    # a new task mid-episode and a reseed
    set_goal(native, reference, 3, {"goal": np.array([0.1, 0.0])})
    compare_rollouts(native, reference, tasks, seed + 10, steps=9, set_task=set_goal)


def test_point_nav_batch_reset_mask_and_sample_tasks() -> None:
    native = PointNav2DVectorEnv(num_envs=3)
    reference = single_envs(POINT, 3)
    native.reset(seed=[5, None, 7])
    reference.reset(seed=[5, None, 7])
    for i in (0, 2):
        assert_same(native.sample_tasks(4, index=i), reference.envs[i].unwrapped.sample_tasks(4))
    assert native.np_random_seeds[0] == 5
    _, info = native.reset(options={"reset_mask": np.array([False, True, False])})
    assert info["_distance"].tolist() == [False, True, False]
    with pytest.raises(ValueError, match=r"options\['reset_mask'\] must be a bool array of shape \(3,\)"):
        native.reset(options={"reset_mask": [1, 0, 1]})


def test_task_api_per_index() -> None:
    envs = PointNav2DVectorEnv(num_envs=4)
    envs.set_task({"goal": [0.5, 0.5]}, indices=[1, 3])
    np.testing.assert_array_equal(envs.get_task(1)["goal"], [0.5, 0.5])
    np.testing.assert_array_equal(envs.get_task(0)["goal"], [0.0, 1.0])
    envs.set_task({"goal": [1.0, 0.0]})  # every env
    assert all(envs.get_task(i)["goal"].tolist() == [1.0, 0.0] for i in range(4))
    envs.set_tasks([{"goal": [float(i), 0.0]} for i in range(4)])
    assert [envs.get_task(i)["goal"][0] for i in range(4)] == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda e: e.set_task({"goal": [0, 1]}, indices=[4]), IndexError, r"indices must lie in \[0, 4\)"),
        (lambda e: e.set_task({"goal": [0, 1]}, indices=[0.5]), IndexError, "indices must be None, an int"),
        (lambda e: e.get_task(-1), IndexError, r"index must be an int in \[0, 4\), got -1"),
        (lambda e: e.set_task({"goal_xy": [0, 1]}, indices=[0]), ValueError, "task must be a dict with keys"),
        (lambda e: e.set_task({"goal": [0, 1, 2]}), ValueError, r"must be a finite array of shape \(2,\)"),
        (lambda e: e.set_tasks([{"goal": [0, 1]}]), ValueError, "tasks must hold num_envs = 4 tasks, got 1"),
        (lambda e: e.step(np.zeros((3, 2))), ValueError, r"actions must have shape \(4, 2\), got shape"),
        (lambda e: e.reset(seed=[1, 2]), ValueError, "seed must be None, an int or 4 seeds, got 2 seeds"),
    ],
)
def test_bad_input(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call(PointNav2DVectorEnv(num_envs=4))


def test_bad_construction() -> None:
    with pytest.raises(ValueError, match="num_envs must be an int >= 1, got 0"):
        PointNav2DVectorEnv(num_envs=0)
    with pytest.raises(ValueError, match="reward_type must be one of"):
        PointNav2DVectorEnv(num_envs=2, reward_type="shaped")
    with pytest.raises(IndexError, match=r"render_index must be an int in \[0, 2\), got 2"):
        PointNav2DVectorEnv(num_envs=2, render_index=2)


def test_render_one_chosen_env() -> None:
    envs = PointNav2DVectorEnv(num_envs=3, render_mode="rgb_array", render_index=2)
    single = gym.make(POINT, render_mode="rgb_array")
    goal = {"goal": np.array([0.6, 0.2])}
    envs.set_task(goal, indices=[2])
    single.unwrapped.set_task(goal)
    envs.reset(seed=0)
    single.reset(seed=0)
    action = np.array([0.5, -0.25], dtype=np.float32)
    envs.step(np.tile(action, (3, 1)))
    single.step(action)
    (frame,) = envs.render()
    np.testing.assert_array_equal(frame, single.render())
    assert PointNav2DVectorEnv(num_envs=1).render() is None
