"""Meta-World's ML1, ML10 and ML45 benchmarks as task families of the task API."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from maesn_sb3.tasks import TaskSet
from maesn_sb3.validators import check_int, check_optional_int
from maesn_sb3.vec_env import MetaTaskVecEnv, make_meta_vec_env

__all__ = [
    "BENCHMARKS",
    "MetaWorldTaskEnv",
    "make_benchmark",
    "make_metaworld_env",
    "metaworld_task_set",
    "require_metaworld",
]

#: The meta-learning benchmarks of Meta-World this module adapts.
BENCHMARKS = ("ML1", "ML10", "ML45")
SPLITS = ("train", "test")
REWARD_TYPES = ("dense", "sparse")


def require_metaworld() -> Any:
    """The ``metaworld`` package, or an ``ImportError`` that says how to install it."""
    try:
        import metaworld
    except ImportError as error:
        raise ImportError(
            "Meta-World is not installed: pip install 'maesn-sb3[metaworld]' (it pins mujoco==3.3.0, so "
            "give it its own virtual environment; `make test-metaworld` builds one in .venv-metaworld)"
        ) from error
    return metaworld


@functools.lru_cache(maxsize=8)
def make_benchmark(benchmark: str = "ML1", env_name: str | None = None, seed: int = 0) -> Any:
    """Meta-World's own benchmark object: ``metaworld.ML1(env_name, seed)``, ``ML10(seed)`` or ``ML45(seed)``.

    Its ``train_tasks`` and ``test_tasks`` (50 goals per environment class, the test goals of ML1 drawn
    with ``seed + 1``) are the benchmark's split. Built once per process for each argument set.
    """
    metaworld = require_metaworld()
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {BENCHMARKS}, got {benchmark!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int (Meta-World draws its goals from it), got {seed!r}")
    if benchmark == "ML1":
        if env_name not in metaworld.ML1.ENV_NAMES:
            raise ValueError(
                f"env_name must name a Meta-World v3 environment for ML1 (e.g. 'reach-v3', 'push-v3'), "
                f"got {env_name!r}"
            )
        return metaworld.ML1(env_name, seed=int(seed))
    if env_name is not None:
        raise ValueError(f"env_name is for ML1 only; {benchmark} fixes its environments, got {env_name!r}")
    return getattr(metaworld, benchmark)(seed=int(seed))


def _describe(benchmark: str, env_name: str | None) -> str:
    return f"ML1 {env_name}" if benchmark == "ML1" else benchmark


def metaworld_task_set(benchmark: str = "ML1", env_name: str | None = None, seed: int = 0) -> TaskSet:
    """The benchmark's own split as a :class:`~maesn_sb3.TaskSet`: ``train`` its ``train_tasks`` and
    ``test`` its ``test_tasks`` (Meta-World's task objects), in the benchmark's order."""
    bench = make_benchmark(benchmark, env_name, seed)
    return TaskSet(
        train=list(bench.train_tasks),
        test=list(bench.test_tasks),
        seed=seed,
        env_id=f"Meta-World {_describe(benchmark, env_name)}",
    )


def _holds(tasks: set[Any], task: Any) -> bool:
    """Whether ``task`` is one of ``tasks`` (False for an unhashable object, which no task is)."""
    try:
        return task in tasks
    except TypeError:
        return False


@functools.cache
def _observation_bounds(env_cls: type) -> tuple[np.ndarray, np.ndarray]:
    """The bounds of ``env_cls``'s partially observable observation space (as the ML benchmarks set it)."""
    env = env_cls()
    try:
        space = env.sawyer_observation_space
        return space.low.copy(), space.high.copy()
    finally:
        env.close()


class MetaWorldTaskEnv(gym.Env):
    """One env that runs any task of a Meta-World ML benchmark: a task family of the task API.

    Tasks are Meta-World's own task objects (``metaworld.types.Task``) of one split of the benchmark;
    ``set_task`` gives the task to a Meta-World env of the task's ``env_name`` (ML10/ML45: the env
    switches between the benchmark's env classes, created when first needed, with one observation
    space: the union of the classes' bounds). Everything else is Meta-World's: observations, the
    ``v2`` reward, ``info["success"]`` (per step, not sticky: count it with
    ``MetaTaskVecEnv(success_mode="any")``, the default), the horizon of 500 steps.

    Seeding reproduces: ``reset(seed=s)`` seeds this env's generator (task draws, the latent wrapper's
    draws) and the Meta-World env with its own ``seed(s)``, which its ``reset`` ignores.

    :param benchmark: ``"ML1"``, ``"ML10"`` or ``"ML45"``.
    :param env_name: the environment of ML1 (e.g. ``"reach-v3"``); None for ML10/ML45.
    :param split: ``"train"`` or ``"test"``: the benchmark tasks that :meth:`sample_tasks` draws from.
    :param benchmark_seed: the seed Meta-World draws the benchmark's goals with (the same seed gives the
        same goals, and Meta-World's evaluation envs built with it hold the same test tasks).
    :param reward_type: ``"dense"`` (Meta-World's reward) or ``"sparse"`` (1 at a step whose success
        flag is set, else 0). ``info["sparse_reward"]`` holds the sparse one either way.
    :param max_episode_steps: the horizon (None: Meta-World's ``max_path_length``, 500).
    :param max_cached_envs: Meta-World env instances (one per env class) kept for switching between
        classes; the least recently used is closed beyond that. Each instance holds about 21 MB.
    :param render_mode: passed to the Meta-World envs.
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 80}

    def __init__(
        self,
        benchmark: str = "ML1",
        env_name: str | None = None,
        split: str = "train",
        benchmark_seed: int = 0,
        reward_type: str = "dense",
        max_episode_steps: int | None = None,
        max_cached_envs: int = 1,
        render_mode: str | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if reward_type not in REWARD_TYPES:
            raise ValueError(f"reward_type must be one of {REWARD_TYPES}, got {reward_type!r}")
        check_optional_int("max_episode_steps", max_episode_steps)
        check_optional_int("max_cached_envs", max_cached_envs)
        bench = make_benchmark(benchmark, env_name, benchmark_seed)
        self.benchmark, self.env_name, self.split = benchmark, env_name, split
        self.benchmark_seed, self.reward_type, self.render_mode = benchmark_seed, reward_type, render_mode
        self.tasks = list(bench.train_tasks if split == "train" else bench.test_tasks)
        self._task_keys = set(self.tasks)  # Meta-World's tasks are hashable (env name, pickled goal)
        self._other_keys = set(bench.test_tasks if split == "train" else bench.train_tasks)
        self._classes = bench.train_classes if split == "train" else bench.test_classes
        every_class = {**bench.train_classes, **bench.test_classes}  # both splits see one space
        bounds = [_observation_bounds(cls) for cls in every_class.values()]
        self.observation_space = gym.spaces.Box(
            np.min([low for low, _ in bounds], axis=0),
            np.max([high for _, high in bounds], axis=0),
            dtype=np.float64,
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        first = self._classes[self.tasks[0].env_name]
        self.max_episode_steps = int(max_episode_steps or first.max_path_length)
        self.max_cached_envs = int(max_cached_envs)
        self._envs: OrderedDict[str, Any] = OrderedDict()
        self._seed: int | None = None
        self.set_task(self.tasks[0])

    # -- the task API ------------------------------------------------------------------------------
    def sample_tasks(self, n: int) -> list[Any]:
        """``n`` distinct tasks of the split, drawn with this env's seeded generator."""
        n = check_int("n", n, minimum=0)
        if n > len(self.tasks):
            raise ValueError(
                f"{n} tasks asked of the {len(self.tasks)} {self.split} tasks of Meta-World "
                f"{_describe(self.benchmark, self.env_name)} (its benchmarks hold 50 goals per environment): "
                f"ask for at most {len(self.tasks)} (e.g. MAESN(..., n_train_tasks={len(self.tasks)})), or "
                "pass the benchmark's own split, task_set=maesn_sb3.metaworld.metaworld_task_set(...)"
            )
        return [self.tasks[i] for i in self.np_random.choice(len(self.tasks), size=n, replace=False)]

    def set_task(self, task: Any) -> None:
        """Run ``task``, one of the split's own tasks (ML1's train and test goals share the env name, so
        the task itself is compared: a test env refuses a training goal)."""
        if not _holds(self._task_keys, task):
            other = "train" if self.split == "test" else "test"
            hint = f" (it is one of the {other} tasks)" if _holds(self._other_keys, task) else ""
            raise ValueError(
                f"task must be one of the {len(self.tasks)} {self.split} tasks of Meta-World "
                f"{_describe(self.benchmark, self.env_name)} (benchmark_seed={self.benchmark_seed}), got "
                f"{type(task).__name__} {task!r:.120}{hint}"
            )
        env = self._env_of(task.env_name)
        env.set_task(task)
        env.max_path_length = self.max_episode_steps
        self._env, self._task = env, task

    def get_task(self) -> Any:
        return self._task

    def _env_of(self, name: str) -> Any:
        if name in self._envs:
            self._envs.move_to_end(name)
            return self._envs[name]
        while len(self._envs) >= self.max_cached_envs:
            self._envs.popitem(last=False)[1].close()
        env = self._classes[name](reward_function_version="v2", render_mode=self.render_mode)
        if self._seed is not None:  # a class first met after seeding: seeded from this env's generator
            env.seed(int(self.np_random.integers(2**31)))
        self._envs[name] = env
        return env

    # -- gymnasium ---------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._seed = seed
            for env in self._envs.values():
                env.seed(seed)  # Meta-World's reset ignores its seed argument
        obs, info = self._env.reset()
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self._env.step(action)
        info["sparse_reward"] = float(info["success"])
        if self.reward_type == "sparse":
            reward = info["sparse_reward"]
        return obs, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> Any:
        return self._env.render()

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def make_metaworld_env(
    benchmark: str = "ML1",
    env_name: str | None = None,
    n_tasks: int = 10,
    envs_per_task: int = 2,
    split: str = "train",
    seed: int | None = 0,
    tasks: Sequence[Any] | TaskSet | None = None,
    latent_dim: int | None = None,
    benchmark_seed: int = 0,
    reward_type: str = "dense",
    max_episode_steps: int | None = None,
    max_cached_envs: int = 1,
    success_mode: str = "any",
    **make_kwargs: Any,
) -> MetaTaskVecEnv:
    """A :class:`~maesn_sb3.MetaTaskVecEnv` over :class:`MetaWorldTaskEnv` sub-envs, as
    :func:`~maesn_sb3.make_meta_vec_env` builds one (``make_kwargs``: its other arguments, e.g.
    ``vectorization="subproc"``, ``wrapper_class``).

    Example: ``make_metaworld_env("ML1", "reach-v3", n_tasks=10, envs_per_task=2, latent_dim=2)``.

    ``tasks`` None draws ``n_tasks`` tasks of ``split``; a :class:`~maesn_sb3.TaskSet` gives its first
    ``n_tasks`` tasks of ``split`` (``test``: its ``test`` tasks). The sub-envs refuse tasks of the other
    split. Success is counted as Meta-World counts it
    (``success_mode="any"``). Memory: each sub-env holds about 21 MB per Meta-World env instance (one;
    ML10/ML45: up to ``max_cached_envs``); MAESN on the default 10 x 2 layout peaked at 0.95 GB, on
    10 x 10 at 3.1 GB (measured, see the Meta-World guide).
    """
    env_kwargs = {
        "benchmark": benchmark,
        "env_name": env_name,
        "split": split,
        "benchmark_seed": benchmark_seed,
        "reward_type": reward_type,
        "max_episode_steps": max_episode_steps,
        "max_cached_envs": max_cached_envs,
        **make_kwargs.pop("env_kwargs", {}),
    }
    MetaWorldTaskEnv(**env_kwargs).close()  # checks every argument here, before building the sub-envs
    if isinstance(tasks, TaskSet) and split == "test":  # make_meta_vec_env takes a TaskSet's train tasks
        if len(tasks.test) < n_tasks:
            raise ValueError(
                f"tasks (a TaskSet) has {len(tasks.test)} test tasks, fewer than n_tasks={n_tasks} "
                "(split='test' takes its test tasks)"
            )
        tasks = tasks.test[:n_tasks]
    return make_meta_vec_env(
        MetaWorldTaskEnv,
        n_tasks=n_tasks,
        envs_per_task=envs_per_task,
        seed=seed,
        tasks=tasks,
        latent_dim=latent_dim,
        env_kwargs=env_kwargs,
        success_mode=success_mode,
        **make_kwargs,
    )
