"""PointNav2D: the fast 2D point task family."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import maesn_sb3  # noqa: F401  (registers the envs)
from maesn_sb3.envs import PointNav2DEnv

ENV_ID = "maesn_sb3/PointNav2D-v0"


def walk_to(env: gym.Env, target: np.ndarray, step_size: float = 0.1) -> list[tuple]:
    """Step straight towards ``target`` until the point sits on it; returns the transitions."""
    transitions = []
    position = np.zeros(2)
    for _ in range(100):
        delta = target - position
        if np.linalg.norm(delta) < 1e-9:
            break
        action = np.clip(delta / step_size, -1.0, 1.0)
        out = env.step(action.astype(np.float32))
        position = out[0].astype(np.float64)
        transitions.append(out)
    return transitions


def test_spaces_start_and_hidden_goal() -> None:
    env = gym.make(ENV_ID)
    obs, info = env.reset(seed=0)
    assert env.observation_space.shape == (2,) and env.action_space.shape == (2,)
    np.testing.assert_array_equal(env.action_space.low, [-1, -1])
    np.testing.assert_array_equal(env.action_space.high, [1, 1])
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    assert obs.dtype == np.float32
    assert info == {"distance": 1.0, "is_success": False}
    # the observation does not depend on the goal
    for task in env.unwrapped.sample_tasks(3):
        env.unwrapped.set_task(task)
        obs, _ = env.reset(seed=0)
        np.testing.assert_array_equal(obs, [0.0, 0.0])
        obs, *_ = env.step(np.array([1.0, 0.5], dtype=np.float32))
        np.testing.assert_allclose(obs, [0.1, 0.05], rtol=1e-6)


def test_goals_on_semicircle_and_seeded() -> None:
    env = PointNav2DEnv(goal_distance=2.0)
    env.reset(seed=7)
    goals = np.array([task["goal"] for task in env.sample_tasks(500)])
    np.testing.assert_allclose(np.linalg.norm(goals, axis=1), 2.0)
    angles = np.arctan2(goals[:, 1], goals[:, 0])
    assert angles.min() >= 0.0 and angles.max() <= np.pi
    assert angles.min() < 0.1 and angles.max() > np.pi - 0.1  # covers the whole semicircle
    env.reset(seed=7)
    again = np.array([task["goal"] for task in env.sample_tasks(500)])
    np.testing.assert_array_equal(again, goals)
    assert env.sample_tasks(0) == []


def test_set_get_task_round_trip_is_a_copy() -> None:
    env = PointNav2DEnv()
    env.set_task({"goal": [0.6, 0.8]})
    task = env.get_task()
    np.testing.assert_array_equal(task["goal"], [0.6, 0.8])
    task["goal"][0] = 5.0
    np.testing.assert_array_equal(env.get_task()["goal"], [0.6, 0.8])


def test_dense_reward_is_negative_distance() -> None:
    env = gym.make(ENV_ID, reward_type="dense")
    env.unwrapped.set_task({"goal": np.array([0.6, 0.8])})
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
    expected = float(np.hypot(0.1 - 0.6, 0.8))
    assert isinstance(reward, float) and reward == pytest.approx(-expected)
    assert info["distance"] == pytest.approx(expected)
    assert (terminated, truncated, info["is_success"]) == (False, False, False)


def test_sparse_reward_and_sticky_success() -> None:
    env = gym.make(ENV_ID, reward_type="sparse", goal_radius=0.2)
    goal = np.array([0.0, 1.0])
    env.unwrapped.set_task({"goal": goal})
    env.reset(seed=0)
    transitions = walk_to(env, goal)
    rewards = [t[1] for t in transitions]
    distances = np.array([t[4]["distance"] for t in transitions])
    successes = [t[4]["is_success"] for t in transitions]
    assert all(isinstance(r, float) for r in rewards)
    np.testing.assert_array_equal(rewards, np.where(distances <= 0.2, 1.0, 0.0))
    assert rewards[-1] == 1.0 and rewards[0] == 0.0
    assert successes == list(distances <= 0.2 + 1e-12)  # monotone here: the point only approaches
    # leaving the goal: reward back to 0, success stays True for the rest of the episode
    for _ in range(5):
        _, reward, _, _, info = env.step(np.array([0.0, -1.0], dtype=np.float32))
    assert reward == 0.0 and info["distance"] > 0.2 and info["is_success"] is True
    env.reset()
    _, _, _, _, info = env.step(np.zeros(2, dtype=np.float32))
    assert info["is_success"] is False


def test_actions_are_bounded_by_the_step_size() -> None:
    env = PointNav2DEnv(step_size=0.25)
    env.reset(seed=0)
    obs, *_ = env.step(np.array([3.0, -7.0]))
    np.testing.assert_allclose(obs, [0.25, -0.25])


@pytest.mark.parametrize("horizon", [50, 7])
def test_horizon(horizon: int) -> None:
    kwargs = {} if horizon == 50 else {"max_episode_steps": horizon}
    env = gym.make(ENV_ID, **kwargs)
    env.reset(seed=0)
    for t in range(1, horizon + 1):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        assert truncated == (t == horizon)


def test_render_rgb_array() -> None:
    env = gym.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (200, 200, 3) and frame.dtype == np.uint8
    no_render = gym.make(ENV_ID)
    no_render.reset(seed=0)
    assert no_render.render() is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reward_type": "shaped"}, "reward_type must be one of"),
        ({"goal_distance": 0.0}, "goal_distance must be a finite number > 0, got 0.0"),
        ({"goal_distance": float("inf")}, "goal_distance must be a finite number > 0"),
        ({"goal_radius": -0.1}, "goal_radius must be a finite number > 0"),
        ({"goal_radius": "0.2"}, "goal_radius must be a finite number > 0"),
        ({"step_size": float("nan")}, "step_size must be a finite number > 0"),
        ({"render_mode": "human"}, "render_mode must be None or 'rgb_array'"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PointNav2DEnv(**kwargs)


@pytest.mark.parametrize(
    "task",
    [{"goal": [1.0, 2.0, 3.0]}, {"goal": [np.nan, 1.0]}, {"goal": "up"}, {"target": [0.0, 1.0]}, [0.0, 1.0]],
)
def test_bad_tasks(task: Any) -> None:
    env = PointNav2DEnv()
    with pytest.raises(ValueError, match=r"task(\['goal'\])? must be a"):
        env.set_task(task)


@pytest.mark.parametrize("n", [-1, 2.5, True, "3"])
def test_bad_sample_count(n: Any) -> None:
    env = PointNav2DEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="n must be an int >= 0"):
        env.sample_tasks(n)
