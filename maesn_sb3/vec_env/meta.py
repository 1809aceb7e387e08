"""A VecEnv of ``n_tasks x envs_per_task`` sub-environments, each group on one task."""

from __future__ import annotations

import abc
import copy
from collections.abc import Sequence
from multiprocessing.reduction import ForkingPickler
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnvStepReturn,
)

from maesn_sb3.tasks import TASK_METHODS
from maesn_sb3.validators import check_int
from maesn_sb3.vec_env.subproc import ReportingSubprocVecEnv
from maesn_sb3.vec_env.wrapper import PicklableVecEnvWrapper
from wrappers.latent import LatentWrapper

__all__ = ["SUCCESS_MODES", "MetaTaskVecEnv", "RemoteEnvsBackend"]

#: How :class:`MetaTaskVecEnv` turns an env's success flag into ``info["is_success"]``.
SUCCESS_MODES = ("any", "last", "env")


class RemoteEnvsBackend(abc.ABC):
    """The contract of a backend VecEnv whose sub-envs live in other processes it does not expose
    (Ray's actors): it reads and sets their generators' states itself, for an exact resume.

    :class:`MetaTaskVecEnv` hands :meth:`get_random_state` and :meth:`set_random_state` to such a
    backend; on any other backend it reaches the generators through ``env_method`` / ``get_attr``.
    """

    @abc.abstractmethod
    def get_random_state(self) -> list[dict[str, Any]]:
        """The state of every sub-env's generator, in sub-env order."""

    @abc.abstractmethod
    def set_random_state(self, states: Sequence[dict[str, Any]]) -> None:
        """Put the sub-envs' generators in ``states`` and drop pending ``seed()`` calls."""


class MetaTaskVecEnv(PicklableVecEnvWrapper):
    """Lays out a backend VecEnv as ``n_tasks`` groups of ``envs_per_task`` envs, one task per group.

    Env ``i`` belongs to task slot ``i // envs_per_task``. The wrapper adds ``info["task_index"]``
    (the slot) to every step and reset info, and copies an env's success signal
    ``info[success_key]`` to ``info["is_success"]`` by the rule ``success_mode`` (below), so SB3's success
    rate, :func:`~maesn_sb3.common.rollouts.collect_episodes`, ``adapt`` and the baselines, which all read
    ``is_success`` at an episode's last step, count success the same way. Tasks and per-task
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
    :param success_mode: how a step's flag (the env's own ``is_success`` when it reports one, else
        ``info[success_key]``) becomes ``is_success``: ``"any"`` (default): True from the first step
        the flag was set until the episode ends, so an episode counts as solved if the flag was ever
        set (Meta-World's rule; its flag is per step and not sticky); ``"last"``: the flag of that
        step, so an episode counts by its last step; ``"env"``: only the env's own ``is_success``,
        untouched (``success_key`` unused). An episode ends with ``done`` or, inside an
        :class:`~wrappers.RL2Wrapper` trial, with ``info["episode_done"]``.
    """

    def __init__(
        self,
        venv: VecEnv,
        n_tasks: int,
        envs_per_task: int = 1,
        tasks: Sequence[Any] | None = None,
        success_key: str = "success",
        success_mode: str = "any",
    ) -> None:
        if success_mode not in SUCCESS_MODES:
            raise ValueError(f"success_mode must be one of {SUCCESS_MODES}, got {success_mode!r}")
        if not isinstance(venv, VecEnv):
            raise TypeError(f"venv must be a stable_baselines3 VecEnv, got {type(venv).__name__}")
        check_int("n_tasks", n_tasks)
        check_int("envs_per_task", envs_per_task)
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
        if isinstance(venv, ReportingSubprocVecEnv):  # its errors name the task slot too
            venv.env_labels = [f"sub-env {i} (task slot {i // envs_per_task})" for i in range(venv.num_envs)]
        super().__init__(venv)
        self.n_tasks = int(n_tasks)
        self.envs_per_task = int(envs_per_task)
        self.success_key = success_key
        self.success_mode = success_mode
        self._solved = np.zeros(venv.num_envs, dtype=bool)  # "any": the flag was set in this episode
        self.task_indices = np.repeat(np.arange(self.n_tasks), self.envs_per_task)
        self._slot_of_env = self.task_indices.tolist()  # python ints for infos
        self.has_latent = all(venv.env_is_wrapped(LatentWrapper))
        self.latent_dim: int | None = venv.get_attr("latent_dim", [0])[0] if self.has_latent else None
        #: the last ``(means, stds)`` given to :meth:`set_latent_distributions` (None: none yet)
        self.latent_distributions: tuple[np.ndarray, np.ndarray] | None = None
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
        if not isinstance(self.venv, DummyVecEnv):  # tasks travel to worker processes: check them all first
            for slot, task in enumerate(tasks):
                try:
                    ForkingPickler.dumps(task)
                except Exception as error:
                    raise TypeError(
                        f"the task of slot {slot} (a {type(task).__name__}) cannot be pickled, so it cannot "
                        f"reach the sub-envs' worker processes: {type(error).__name__}: {error}; use tasks "
                        "made of plain data (dicts, arrays, numbers); no slot was changed"
                    ) from error
        previous = self._tasks
        for slot, task in enumerate(tasks):
            try:
                self.venv.env_method("set_task", task, indices=self.env_indices_of(slot).tolist())
            except Exception as error:
                note = self._roll_back(previous, slot)
                raise ValueError(
                    f"the task of slot {slot} ({type(task).__name__} {task!r:.200}) was refused by its "
                    f"sub-envs ({note}): {type(error).__name__}: {error}"
                ) from error
        self._tasks = tasks

    def _roll_back(self, previous: list[Any], failed_slot: int) -> str:
        """Give slots ``0..failed_slot`` their ``previous`` tasks again; a note on how that went."""
        if not previous:
            return "(no previous tasks to restore)"
        try:
            for slot in range(failed_slot + 1):
                self.venv.env_method("set_task", previous[slot], indices=self.env_indices_of(slot).tolist())
        except Exception as error:
            return f"restoring the previous tasks failed too ({type(error).__name__}: {error})"
        return "every slot keeps its previous task"

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
        # TimeLimit keeps it in _max_episode_steps; batched families and self-ending envs declare it
        for name in ("_max_episode_steps", "max_episode_steps"):
            if self.venv.has_attr(name):
                values = self.venv.get_attr(name)
                if all(value is not None for value in values):
                    return max(int(value) for value in values)
        raise ValueError(
            "the sub-envs have no horizon (no gymnasium.wrappers.TimeLimit and no max_episode_steps "
            "attribute), so an episode may never end and collecting whole episodes would never stop; "
            "wrap each env in gymnasium.wrappers.TimeLimit(env, max_episode_steps=N), register it with "
            "max_episode_steps, or pass env_kwargs={'max_episode_steps': N} to make_meta_vec_env"
        )

    # -- random state (exact resume) --------------------------------------------------------------
    def _generators(self) -> list[np.random.Generator]:
        """Each sub-env's generator (tasks, latents and resets draw from it): a batched family's
        ``env_np_random(i)``, else the env's ``np_random`` (copies under subprocess workers)."""
        if self.venv.has_attr("env_np_random"):
            return self.venv.env_method("env_np_random")
        return self.venv.get_attr("np_random")

    def get_random_state(self) -> list[dict[str, Any]]:
        """The state of every sub-env's generator (see :meth:`set_random_state`)."""
        if isinstance(self.venv, RemoteEnvsBackend):
            return self.venv.get_random_state()
        return [copy.deepcopy(generator.bit_generator.state) for generator in self._generators()]

    def set_random_state(self, states: Sequence[dict[str, Any]]) -> None:
        """Put the sub-envs' generators back in the states of :meth:`get_random_state` and drop pending
        ``seed()`` calls, so that the next episodes continue the saved random streams."""
        if len(states) != self.num_envs:
            raise ValueError(
                f"states must hold num_envs = {self.num_envs} generator states, got {len(states)}"
            )
        if isinstance(self.venv, RemoteEnvsBackend):
            self.venv.set_random_state(states)
            return
        generators = self._generators()
        for index, (generator, state) in enumerate(zip(generators, states, strict=True)):
            generator.bit_generator.state = state
            if isinstance(self.venv, SubprocVecEnv):  # the generators above are copies: send them back
                self.venv.set_attr("np_random", generator, indices=[index])
        venv: VecEnv = self.venv
        while True:  # SB3 keeps seed() for the next reset, on the innermost VecEnv: it would reseed
            venv._reset_seeds()
            if not isinstance(venv, VecEnvWrapper):
                break
            venv = venv.venv

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
                raise ValueError(
                    f"{name} must be finite, got {value} (after a latent update this means rewards or "
                    "advantages too large for float32: scale or clip the rewards)"
                )
        if np.any(stds < 0):
            raise ValueError(f"stds must be >= 0, got {stds}")
        for slot in range(self.n_tasks):
            self.venv.env_method(
                "set_latent_distribution", means[slot], stds[slot], indices=self.env_indices_of(slot).tolist()
            )
        self.latent_distributions = (means, stds)

    # -- VecEnv ---------------------------------------------------------------------------------
    def _annotate(
        self,
        infos: Sequence[dict[str, Any]],
        solved: np.ndarray | None = None,
        rows: Sequence[int] | None = None,
    ) -> None:
        """Add ``task_index`` and ``is_success`` to ``infos`` (those of envs ``rows``; None: every env);
        ``solved``: the "any" mode's flags of every env, updated in place."""
        envs = range(len(infos)) if rows is None else rows
        slots, key, flags = self._slot_of_env, self.success_key, []
        for i, info in zip(envs, infos, strict=True):
            info["task_index"] = slots[i]
            flags.append(info["is_success"] if "is_success" in info else info.get(key))
        if self.success_mode == "env":
            return
        if self.success_mode == "last" or solved is None:
            for info, flag in zip(infos, flags, strict=True):
                if flag is not None:
                    info["is_success"] = bool(flag)
            return
        known = [j for j, flag in enumerate(flags) if flag is not None]
        at = np.asarray(envs, dtype=np.intp)[known]
        solved[at] |= np.array([bool(flags[j]) for j in known], dtype=bool)
        for i, j, value in zip(at.tolist(), known, solved[at].tolist(), strict=True):
            infos[j]["is_success"] = value
            if infos[j].get("episode_done"):  # an inner episode of an RL2Wrapper trial ended
                solved[i] = False

    def reset(self) -> np.ndarray | dict[str, np.ndarray]:
        obs = self.venv.reset()
        self._solved[:] = False
        self.reset_infos = self.venv.reset_infos
        self._annotate(self.reset_infos)
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self._annotate(infos, self._solved)
        self._solved[dones] = False  # the next episode starts unsolved
        if self.venv.reset_infos is self.reset_infos:  # in-process backends replace the new episodes'
            ended = np.flatnonzero(dones).tolist()
            self._annotate([self.reset_infos[i] for i in ended], rows=ended)
        else:  # subprocess and Ray backends send fresh reset infos every step: annotate them all
            self.reset_infos = self.venv.reset_infos
            self._annotate(self.reset_infos)
        return obs, rewards, dones, infos
