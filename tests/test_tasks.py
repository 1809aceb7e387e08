"""The task API: TaskSet splits and check_task_env."""

from __future__ import annotations

import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import maesn_sb3
from maesn_sb3 import TaskEnv, TaskSet, check_task_env

ENV_ID = "maesn_sb3/PointNav2D-v0"


class Level:
    """A foreign task object (not a dict or an array), as Meta-World ships them."""

    def __init__(self, level: int) -> None:
        self.level = level

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Level) and other.level == self.level

    def __hash__(self) -> int:
        return hash(self.level)


class FiniteTaskEnv(gym.Env):
    """A task family with only ``n_levels`` distinct tasks, carried as foreign objects."""

    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, n_levels: int = 1000) -> None:
        self.n_levels = n_levels
        self.task = Level(0)

    def sample_tasks(self, n: int) -> list[Any]:
        return [Level(int(k)) for k in self.np_random.integers(0, self.n_levels, size=n)]

    def set_task(self, task: Any) -> None:
        self.task = task

    def get_task(self) -> Any:
        return self.task

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: Any):
        return np.zeros(1, dtype=np.float32), 0.0, True, False, {}


def goals(tasks: list[dict[str, np.ndarray]]) -> np.ndarray:
    return np.array([task["goal"] for task in tasks])


def test_from_env_defaults_disjoint_and_reproducible() -> None:
    tasks = TaskSet.from_env(ENV_ID, seed=3)
    assert (len(tasks.train), len(tasks.test), len(tasks)) == (100, 100, 200)
    assert tasks.seed == 3 and tasks.env_id == ENV_ID
    train, test = goals(tasks.train), goals(tasks.test)
    assert not (set(map(tuple, train)) & set(map(tuple, test)))
    again = TaskSet.from_env(ENV_ID, seed=3)
    np.testing.assert_array_equal(goals(again.train), train)
    np.testing.assert_array_equal(goals(again.test), test)
    other = TaskSet.from_env(ENV_ID, seed=4)
    assert not np.allclose(goals(other.train), train)


def test_from_env_accepts_env_and_callable_and_same_seed_same_tasks() -> None:
    by_id = TaskSet.from_env(ENV_ID, n_train=5, n_test=2, seed=0)
    env = gym.make(ENV_ID)
    by_env = TaskSet.from_env(env, n_train=5, n_test=2, seed=0)
    by_callable = TaskSet.from_env(lambda: gym.make(ENV_ID), n_train=5, n_test=2, seed=0)
    for other in (by_env, by_callable):
        np.testing.assert_array_equal(goals(other.train), goals(by_id.train))
        np.testing.assert_array_equal(goals(other.test), goals(by_id.test))
        assert other.env_id == ENV_ID
    # a passed-in env is the caller's: it is not closed and stays usable
    env.reset()
    env.step(env.action_space.sample())


def test_taskset_pickles_and_split() -> None:
    tasks = TaskSet.from_env(ENV_ID, n_train=4, n_test=3, seed=1)
    copy = pickle.loads(pickle.dumps(tasks))
    np.testing.assert_array_equal(goals(copy.train), goals(tasks.train))
    np.testing.assert_array_equal(goals(copy.test), goals(tasks.test))
    assert copy.seed == 1 and copy.env_id == ENV_ID
    assert tasks.split("train") is tasks.train and tasks.split("test") is tasks.test
    with pytest.raises(ValueError, match="name must be 'train' or 'test'"):
        tasks.split("validation")


def test_foreign_task_objects_and_deduplication() -> None:
    tasks = TaskSet.from_env(lambda: FiniteTaskEnv(n_levels=12), n_train=8, n_test=4, seed=0)
    assert all(isinstance(task, Level) for task in tasks.train + tasks.test)
    levels = [task.level for task in tasks.train + tasks.test]
    assert sorted(levels) == list(range(12))  # every level exactly once: repeats were redrawn
    with pytest.raises(ValueError, match="gave only 12 distinct tasks"):
        TaskSet.from_env(lambda: FiniteTaskEnv(n_levels=12), n_train=10, n_test=3, seed=0, max_draws=20)


def test_check_task_env_sees_through_wrappers() -> None:
    env = gym.make(ENV_ID)
    check_task_env(env)
    assert isinstance(env.unwrapped, TaskEnv)
    with pytest.raises(TypeError, match="missing sample_tasks, set_task, get_task"):
        check_task_env(gym.make("CartPole-v1"))
    assert not isinstance(gym.make("CartPole-v1").unwrapped, TaskEnv)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_train": 0}, ValueError, "n_train must be an int >= 1, got 0"),
        ({"n_train": 2.0}, ValueError, "n_train must be an int >= 1"),
        ({"n_train": True}, ValueError, "n_train must be an int >= 1"),
        ({"n_test": -1}, ValueError, "n_test must be an int >= 0, got -1"),
        ({"n_test": "5"}, ValueError, "n_test must be an int >= 0"),
    ],
)
def test_from_env_bad_counts(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        TaskSet.from_env(ENV_ID, **kwargs)


def test_from_env_rejects_env_without_task_api() -> None:
    with pytest.raises(TypeError, match="does not implement the task API"):
        TaskSet.from_env("CartPole-v1")


def test_taskset_constructor_validation() -> None:
    with pytest.raises(TypeError, match="train and test must be lists"):
        TaskSet(train=(1, 2), test=[3])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="train must hold at least one task"):
        TaskSet(train=[], test=[1])
    with pytest.raises(ValueError, match="must be disjoint, but 1 task"):
        TaskSet(train=[{"goal": np.ones(2)}, 2], test=[{"goal": np.ones(2)}])
    assert len(TaskSet(train=[1], test=[])) == 1


def test_package_lists_envs() -> None:
    assert ENV_ID in maesn_sb3.list_envs()
    maesn_sb3.envs.register_envs()  # safe to call twice
    assert ENV_ID in gym.registry


def test_task_set_repr_is_a_summary():
    tasks = TaskSet.from_env("maesn_sb3/PointNav2D-v0", n_train=100, n_test=30, seed=0)
    text = repr(tasks)
    assert text.startswith("TaskSet(100 train, 30 test, env_id='maesn_sb3/PointNav2D-v0', seed=0")
    assert len(text) < 200  # not every task
