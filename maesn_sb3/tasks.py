"""The task API: how an environment exposes a distribution of tasks.

An environment opts in by implementing three methods (the learn2learn / garage convention):

- ``sample_tasks(n) -> list``: draw ``n`` tasks from the env's seeded generator (``self.np_random``),
- ``set_task(task)``: switch the env to ``task``; it takes effect immediately (call ``reset`` to
  start a fresh episode on it),
- ``get_task()``: the current task.

A task may be any picklable object: a dict, an array or a foreign task object (Meta-World's).
Task families report ``info["is_success"]`` once the task has been solved in the current episode.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym

from maesn_sb3.validators import check_int


@runtime_checkable
class TaskEnv(Protocol):
    """Protocol of an environment that carries a distribution of tasks."""

    def sample_tasks(self, n: int) -> list[Any]: ...

    def set_task(self, task: Any) -> None: ...

    def get_task(self) -> Any: ...


TASK_METHODS = ("sample_tasks", "set_task", "get_task")


def check_task_env(env: gym.Env) -> None:
    """Raise ``TypeError`` unless ``env`` (or an env it wraps) implements the task API."""
    missing = []
    for name in TASK_METHODS:
        try:
            method = env.get_wrapper_attr(name)
        except AttributeError:
            method = None
        if not callable(method):
            missing.append(name)
    if missing:
        raise TypeError(
            f"env {env!r} does not implement the task API: missing {', '.join(missing)}. "
            "A task env needs sample_tasks(n), set_task(task) and get_task()."
        )


def _task_key(task: Any) -> bytes:
    return pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)


@dataclass
class TaskSet:
    """A fixed, seeded split of a task distribution into training and held-out tasks.

    ``train`` and ``test`` are disjoint (compared by their pickled bytes). Build one with
    :meth:`from_env`; a ``TaskSet`` is picklable and is saved with the models that use it.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> tasks = maesn_sb3.TaskSet.from_env("maesn_sb3/PointNav2D-v0", n_train=10, n_test=5, seed=0)
        >>> len(tasks.train), len(tasks.test)
        (10, 5)
    """

    train: list[Any]
    test: list[Any]
    seed: int | None = None
    env_id: str | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.train, list) or not isinstance(self.test, list):
            raise TypeError(
                f"train and test must be lists of tasks, got {type(self.train).__name__} "
                f"and {type(self.test).__name__}"
            )
        if not self.train:
            raise ValueError("train must hold at least one task, got an empty list")
        overlap = {_task_key(t) for t in self.train} & {_task_key(t) for t in self.test}
        if overlap:
            raise ValueError(f"train and test must be disjoint, but {len(overlap)} task(s) appear in both")

    def __repr__(self) -> str:
        first = repr(self.train[0])
        first = first if len(first) <= 60 else first[:57] + "..."
        return (
            f"TaskSet({len(self.train)} train, {len(self.test)} test, env_id={self.env_id!r}, "
            f"seed={self.seed!r}, first train task: {first})"
        )

    @classmethod
    def from_env(
        cls,
        env: str | gym.Env | Callable[[], gym.Env],
        n_train: int = 100,
        n_test: int = 100,
        seed: int | None = 0,
        max_draws: int = 100,
    ) -> TaskSet:
        """Draw ``n_train + n_test`` distinct tasks from ``env``'s task distribution.

        :param env: an env id, an env, or a callable returning an env; it must implement the task API.
        :param n_train: number of training tasks (>= 1).
        :param n_test: number of held-out tasks (>= 0).
        :param seed: seeds the env's generator before drawing, so the same seed gives the same split
            (None: an unseeded draw).
        :param max_draws: give up after this many rounds of drawing when the family repeats tasks.
        """
        n_train = check_int("n_train", n_train)
        n_test = check_int("n_test", n_test, minimum=0)
        env_id = env if isinstance(env, str) else None
        made = isinstance(env, str) or not isinstance(env, gym.Env)
        instance = gym.make(env) if isinstance(env, str) else env() if made else env
        try:
            check_task_env(instance)
            if env_id is None and instance.spec is not None:
                env_id = instance.spec.id
            instance.reset(seed=seed)
            sample = instance.get_wrapper_attr("sample_tasks")
            wanted = n_train + n_test
            tasks: list[Any] = []
            seen: set[bytes] = set()
            for _ in range(max_draws):
                for task in sample(wanted - len(tasks)):
                    key = _task_key(task)
                    if key not in seen:
                        seen.add(key)
                        tasks.append(task)
                if len(tasks) == wanted:
                    break
            else:
                raise ValueError(
                    f"the task distribution of {env_id or instance!r} gave only {len(tasks)} distinct "
                    f"tasks in {max_draws} draws, fewer than n_train + n_test = {wanted}"
                )
        finally:
            if made:
                instance.close()
        return cls(train=tasks[:n_train], test=tasks[n_train:], seed=seed, env_id=env_id)

    def __len__(self) -> int:
        return len(self.train) + len(self.test)

    def split(self, name: str) -> Sequence[Any]:
        """The tasks of split ``"train"`` or ``"test"``."""
        if name not in ("train", "test"):
            raise ValueError(f"name must be 'train' or 'test', got {name!r}")
        return self.train if name == "train" else self.test
