"""A VecEnv of ``n_tasks x envs_per_task`` sub-environments, each group on one task."""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from maesn_sb3.tasks import TASK_METHODS, TaskSet
from wrappers.latent import LatentWrapper

__all__ = ["MetaTaskVecEnv", "make_meta_vec_env"]


def _make_registered(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make`` from a module that registers this package's envs, so that subprocess workers
    started with ``forkserver``/``spawn`` (which import nothing of the parent) find them too."""
    return gym.make(env_id, **kwargs)


class MetaTaskVecEnv(VecEnvWrapper):
    """Lays out a backend VecEnv as ``n_tasks`` groups of ``envs_per_task`` envs, one task per group.

    Env ``i`` belongs to task slot ``i // envs_per_task``. The wrapper adds ``info["task_index"]``
    (the slot) to every step and reset info, and copies an env's success signal
    ``info[success_key]`` to ``info["is_success"]`` so SB3 logs success rates. Tasks and per-task
    latent distributions reach the sub-envs only through ``env_method`` (``set_task`` and
    ``set_latent_distribution``), so any backend VecEnv that answers those calls works: SB3's
    ``DummyVecEnv`` and ``SubprocVecEnv`` today. Any SB3 algorithm can ``learn`` on it directly.

    Example:
        >>> from maesn_sb3 import make_meta_vec_env
        >>> venv = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=3, envs_per_task=2, seed=0,
        ...                          latent_dim=2)
        >>> venv.num_envs, venv.task_of(5) is venv.tasks[2]
        (6, True)

    :param venv: the backend VecEnv; its sub-envs implement the task API.
    :param n_tasks: number of task slots (>= 1).
    :param envs_per_task: sub-envs per task slot (>= 1); ``venv.num_envs`` must be their product.
    :param tasks: the initial tasks, one per slot; ``None`` keeps the sub-envs' current tasks.
    :param success_key: the info key of the env's own success flag.
    """

    def __init__(
        self,
        venv: VecEnv,
        n_tasks: int,
        envs_per_task: int = 1,
        tasks: Sequence[Any] | None = None,
        success_key: str = "success",
    ) -> None:
        if not isinstance(venv, VecEnv):
            raise TypeError(f"venv must be a stable_baselines3 VecEnv, got {type(venv).__name__}")
        for name, value in (("n_tasks", n_tasks), ("envs_per_task", envs_per_task)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if venv.num_envs != n_tasks * envs_per_task:
            raise ValueError(
                f"venv.num_envs must equal n_tasks * envs_per_task = {n_tasks * envs_per_task}, "
                f"got {venv.num_envs}"
            )
        missing = [name for name in TASK_METHODS if not venv.has_attr(name)]
        if missing:
            raise TypeError(
                f"the sub-envs of venv do not implement the task API (missing {', '.join(missing)}); "
                "they need sample_tasks(n), set_task(task) and get_task()"
            )
        super().__init__(venv)
        self.n_tasks = int(n_tasks)
        self.envs_per_task = int(envs_per_task)
        self.success_key = success_key
        self.task_indices = np.repeat(np.arange(self.n_tasks), self.envs_per_task)
        self._slot_of_env = self.task_indices.tolist()  # python ints for infos
        self.has_latent = all(venv.env_is_wrapped(LatentWrapper))
        self.latent_dim: int | None = venv.get_attr("latent_dim", [0])[0] if self.has_latent else None
        if tasks is None:
            self._tasks = [
                venv.env_method("get_task", indices=[i])[0]
                for i in self.env_indices_of(np.arange(self.n_tasks))[:, 0]
            ]
        else:
            self._tasks = []
            self.set_tasks(tasks)

    # -- task layout ----------------------------------------------------------------------------
    @property
    def tasks(self) -> list[Any]:
        """The current task of each slot."""
        return list(self._tasks)

    def env_indices_of(self, task_index: int | np.ndarray) -> np.ndarray:
        """Indices of the sub-envs of one slot (shape ``(envs_per_task,)``) or of several slots."""
        slots = np.asarray(task_index)
        if np.any((slots < 0) | (slots >= self.n_tasks)):
            raise IndexError(f"task_index must lie in [0, {self.n_tasks}), got {task_index}")
        return slots[..., None] * self.envs_per_task + np.arange(self.envs_per_task)

    def task_of(self, env_index: int) -> Any:
        """The task that sub-env ``env_index`` is running."""
        if not 0 <= env_index < self.num_envs:
            raise IndexError(f"env_index must lie in [0, {self.num_envs}), got {env_index}")
        return self._tasks[self._slot_of_env[env_index]]

    def set_tasks(self, tasks: Sequence[Any]) -> None:
        """Assign ``tasks[k]`` to every sub-env of slot ``k``; call ``reset()`` to start on them."""
        tasks = list(tasks)
        if len(tasks) != self.n_tasks:
            raise ValueError(f"tasks must hold n_tasks = {self.n_tasks} tasks, got {len(tasks)}")
        for slot, task in enumerate(tasks):
            self.venv.env_method("set_task", task, indices=self.env_indices_of(slot).tolist())
        self._tasks = tasks

    def sample_tasks(self, n: int) -> list[Any]:
        """Draw ``n`` tasks from the task distribution of the first sub-env (its seeded generator)."""
        return self.venv.env_method("sample_tasks", n, indices=[0])[0]

    @property
    def horizon(self) -> int:
        """The most steps an episode of a sub-env lasts: its ``TimeLimit``'s ``max_episode_steps`` (or
        an env's own ``max_episode_steps`` attribute, for envs that end their episodes themselves).

        Collecting whole episodes needs it; a ``ValueError`` says how to add one when there is none.
        """
        if getattr(self, "_horizon", None) is None:
            self._horizon = self._find_horizon()
        return self._horizon

    def _find_horizon(self) -> int:
        limited = all(self.venv.env_is_wrapped(gym.wrappers.TimeLimit))
        name = "_max_episode_steps" if limited else "max_episode_steps"
        values = self.venv.get_attr(name) if self.venv.has_attr(name) else [None]
        if any(value is None for value in values):
            raise ValueError(
                "the sub-envs have no horizon (no gymnasium.wrappers.TimeLimit and no max_episode_steps "
                "attribute), so an episode may never end and collecting whole episodes would never stop; "
                "wrap each env in gymnasium.wrappers.TimeLimit(env, max_episode_steps=N), register it with "
                "max_episode_steps, or pass env_kwargs={'max_episode_steps': N} to make_meta_vec_env"
            )
        return max(int(value) for value in values)

    # -- random state (exact resume) --------------------------------------------------------------
    def get_random_state(self) -> list[np.random.Generator]:
        """Copies of every sub-env's ``np_random`` (tasks, latents and resets draw from it)."""
        return [copy.deepcopy(generator) for generator in self.venv.get_attr("np_random")]

    def set_random_state(self, generators: Sequence[np.random.Generator]) -> None:
        """Give the sub-envs the generators of :meth:`get_random_state` and drop pending ``seed()``
        calls, so that the next episodes continue the saved random streams."""
        if len(generators) != self.num_envs:
            raise ValueError(
                f"generators must hold num_envs = {self.num_envs} generators, got {len(generators)}"
            )
        for index, generator in enumerate(generators):
            self.venv.set_attr("np_random", copy.deepcopy(generator), indices=[index])
        self.venv._reset_seeds()  # SB3 keeps seed() for the next reset: it would replace the streams

    # -- latents --------------------------------------------------------------------------------
    def set_latent_distributions(self, means: np.ndarray, stds: np.ndarray) -> None:
        """Give slot ``k``'s envs the latent distribution N(means[k], stds[k]) from their next reset.

        :param means: shape ``(n_tasks, latent_dim)``.
        :param stds: shape ``(n_tasks, latent_dim)``, >= 0.
        """
        if not self.has_latent:
            raise RuntimeError("the sub-envs carry no LatentWrapper: build them with latent_dim set")
        expected = (self.n_tasks, self.latent_dim)
        try:
            means, stds = np.asarray(means, dtype=np.float64), np.asarray(stds, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"means and stds must be arrays of numbers, got {means!r} and {stds!r}"
            ) from error
        for name, value in (("means", means), ("stds", stds)):
            if value.shape != expected:
                raise ValueError(
                    f"{name} must have shape {expected} (n_tasks, latent_dim), got {value.shape}"
                )
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name} must be finite, got {value}")
        if np.any(stds < 0):
            raise ValueError(f"stds must be >= 0, got {stds}")
        for slot in range(self.n_tasks):
            self.venv.env_method(
                "set_latent_distribution", means[slot], stds[slot], indices=self.env_indices_of(slot).tolist()
            )

    # -- pickling (SB3's VecEnvWrapper keeps an unpicklable copy of its class attributes) --------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["class_attributes"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.class_attributes = dict(inspect.getmembers(self.__class__))

    # -- VecEnv ---------------------------------------------------------------------------------
    def _annotate(self, infos: Sequence[dict[str, Any]]) -> None:
        key = self.success_key
        for info, slot in zip(infos, self._slot_of_env, strict=True):
            info["task_index"] = slot
            if key in info and "is_success" not in info:
                info["is_success"] = bool(info[key])

    def reset(self) -> np.ndarray | dict[str, np.ndarray]:
        obs = self.venv.reset()
        self.reset_infos = self.venv.reset_infos
        self._annotate(self.reset_infos)
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self._annotate(infos)
        # Subprocess backends send fresh reset infos every step, so annotate them all (cheap).
        self.reset_infos = self.venv.reset_infos
        self._annotate(self.reset_infos)
        return obs, rewards, dones, infos


def make_meta_vec_env(
    env_id: str | Callable[..., gym.Env],
    n_tasks: int,
    envs_per_task: int = 1,
    seed: int | None = None,
    tasks: Sequence[Any] | TaskSet | None = None,
    latent_dim: int | None = None,
    wrapper_class: Callable[[gym.Env], gym.Env] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    vec_env_cls: type[DummyVecEnv | SubprocVecEnv] | None = None,
    vec_env_kwargs: dict[str, Any] | None = None,
    monitor_dir: str | None = None,
    monitor_kwargs: dict[str, Any] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    success_key: str = "success",
) -> MetaTaskVecEnv:
    """Create a monitored :class:`MetaTaskVecEnv`, in the style of SB3's ``make_vec_env``.

    Each sub-env is ``LatentWrapper(wrapper_class(Monitor(make_env())))`` (the latent wrapper only
    when ``latent_dim`` is set).

    :param env_id: an env id or a callable returning an env that implements the task API.
    :param n_tasks: number of task slots.
    :param envs_per_task: sub-envs per slot.
    :param seed: seeds the sub-envs (env ``i`` gets ``seed + i``) and, when ``tasks`` is None,
        the draw of the initial tasks.
    :param tasks: the initial tasks: a sequence of ``n_tasks`` tasks, a :class:`TaskSet` (its first
        ``n_tasks`` training tasks), or None to draw ``n_tasks`` tasks from the distribution.
    :param latent_dim: add a :class:`~wrappers.LatentWrapper` of this size to every sub-env.
    :param wrapper_class: an extra wrapper applied after the ``Monitor``, before the latent wrapper.
    :param env_kwargs: keyword arguments for the env constructor.
    :param vec_env_cls: the backend, ``DummyVecEnv`` (default) or ``SubprocVecEnv``.
    :param vec_env_kwargs: keyword arguments for the backend's constructor.
    :param monitor_dir: folder for the Monitor files (None: none written).
    :param monitor_kwargs: keyword arguments for ``Monitor``.
    :param wrapper_kwargs: keyword arguments for ``wrapper_class``.
    :param success_key: the info key of the env's own success flag.
    """
    for name, value in (("n_tasks", n_tasks), ("envs_per_task", envs_per_task)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if latent_dim is not None and (
        isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1
    ):
        raise ValueError(f"latent_dim must be None or an int >= 1, got {latent_dim!r}")
    env_kwargs = dict(env_kwargs or {})
    if isinstance(tasks, TaskSet):
        if len(tasks.train) < n_tasks:
            raise ValueError(
                f"tasks (a TaskSet) has {len(tasks.train)} training tasks, fewer than n_tasks={n_tasks}"
            )
        tasks = tasks.train[:n_tasks]
    elif tasks is None:

        def make_one() -> gym.Env:
            return gym.make(env_id, **env_kwargs) if isinstance(env_id, str) else env_id(**env_kwargs)

        tasks = TaskSet.from_env(make_one, n_train=n_tasks, n_test=0, seed=seed).train

    def wrap(env: gym.Env) -> gym.Env:
        if wrapper_class is not None:
            env = wrapper_class(env, **(wrapper_kwargs or {}))
        if latent_dim is not None:
            env = LatentWrapper(env, latent_dim=latent_dim)
        return env

    venv = make_vec_env(
        functools.partial(_make_registered, env_id) if isinstance(env_id, str) else env_id,
        n_envs=n_tasks * envs_per_task,
        seed=seed,
        monitor_dir=monitor_dir,
        wrapper_class=wrap,
        env_kwargs=env_kwargs,
        vec_env_cls=vec_env_cls,
        vec_env_kwargs=vec_env_kwargs,
        monitor_kwargs=monitor_kwargs,
    )
    return MetaTaskVecEnv(venv, n_tasks, envs_per_task, tasks=tasks, success_key=success_key)
