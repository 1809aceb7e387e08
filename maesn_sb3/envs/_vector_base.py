"""What the batched task families share: per-env generators, tasks per index, time limit, autoreset.

A batched family is a :class:`gymnasium.vector.VectorEnv` whose env ``i`` behaves exactly like the
single env ``gym.make(env_id)`` (with its ``TimeLimit``) reset with the same seed, given the same task
and actions. It auto-resets in Gymnasium's ``SAME_STEP`` mode: a finished env's last observation and
info go to ``info["final_obs"]`` and ``info["final_info"]`` and its row holds the first observation of
its next episode (SB3's convention too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from maesn_sb3.validators import check_int

IndicesLike = int | Sequence[int] | np.ndarray | None


class TaskVectorEnv(gym.vector.VectorEnv):
    """Base class of a batched task family (see the module docstring).

    Subclasses implement ``_check_task``, ``_write_task``, ``_read_task``, ``_reset_envs``,
    ``_observe``, ``_reset_info`` and ``_step_envs``; randomness of env ``i`` comes only from
    :meth:`env_np_random` ``(i)``, drawn in the order the single env draws it.

    :param num_envs: number of envs (>= 1).
    :param max_episode_steps: the time limit (the registered horizon), or None for none.
    :param render_mode: None or ``"rgb_array"``.
    :param render_index: the env that :meth:`render` shows.
    """

    #: what an env of the batch is wrapped in, seen from SB3's ``env_is_wrapped``
    single_env_equivalents: tuple[type, ...] = (gym.wrappers.TimeLimit,)

    def __init__(
        self,
        num_envs: int,
        single_observation_space: gym.Space,
        single_action_space: gym.Space,
        max_episode_steps: int | None,
        render_mode: str | None = None,
        render_index: int = 0,
    ) -> None:
        self.num_envs = check_int("num_envs", num_envs, 1)
        if max_episode_steps is not None:
            max_episode_steps = check_int("max_episode_steps", max_episode_steps, 1)
        self.max_episode_steps = max_episode_steps
        self.metadata = {**type(self).metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        if render_mode is not None and render_mode not in self.metadata.get("render_modes", ()):
            raise ValueError(
                f"render_mode must be None or one of {self.metadata.get('render_modes')}, got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.render_index = self._check_index(render_index, "render_index")
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)
        self._np_randoms: list[np.random.Generator | None] = [None] * self.num_envs
        self._np_random_seeds: list[int | None] = [None] * self.num_envs
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._action_shape = self.action_space.shape

    # -- indices and generators -----------------------------------------------------------------
    def _check_index(self, index: Any, name: str = "index") -> int:
        is_int = isinstance(index, (int, np.integer)) and not isinstance(index, bool)
        if not is_int or not 0 <= index < self.num_envs:
            raise IndexError(f"{name} must be an int in [0, {self.num_envs}), got {index!r}")
        return int(index)

    def _check_indices(self, indices: IndicesLike, name: str = "indices") -> np.ndarray:
        """``indices`` as an int array (None: every env), or an ``IndexError`` saying what was expected."""
        if indices is None:
            return np.arange(self.num_envs)
        if isinstance(indices, (int, np.integer)) and not isinstance(indices, bool):
            indices = [indices]
        array = np.asarray(indices)
        if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
            raise IndexError(
                f"{name} must be None, an int or a 1-D sequence of ints in [0, {self.num_envs}), "
                f"got {indices!r}"
            )
        array = array.astype(np.int64)
        if np.any((array < 0) | (array >= self.num_envs)):
            raise IndexError(f"{name} must lie in [0, {self.num_envs}), got {indices!r}")
        return array

    def env_np_random(self, index: int) -> np.random.Generator:
        """The generator of env ``index`` (seeded at its reset, like a single env's ``np_random``)."""
        index = self._check_index(index)
        rng = self._np_randoms[index]
        if rng is None:
            rng, self._np_random_seeds[index] = seeding.np_random()
            self._np_randoms[index] = rng
        return rng

    @property
    def np_random_seeds(self) -> list[int | None]:
        """The seed of each env's generator (None until it is seeded or first used)."""
        return list(self._np_random_seeds)

    # -- task API -------------------------------------------------------------------------------
    def sample_tasks(self, n: int, index: int = 0) -> list[Any]:
        """Draw ``n`` tasks from env ``index``'s generator (as that single env's ``sample_tasks``)."""
        raise NotImplementedError

    def set_task(self, task: Any, indices: IndicesLike = None) -> None:
        """Switch the envs ``indices`` (None: all) to ``task``; it takes effect immediately."""
        checked = self._check_task(task)
        self._write_task(checked, self._check_indices(indices))

    def set_tasks(self, tasks: Sequence[Any]) -> None:
        """Give env ``i`` the task ``tasks[i]`` (one task per env)."""
        if len(tasks) != self.num_envs:
            raise ValueError(f"tasks must hold num_envs = {self.num_envs} tasks, got {len(tasks)}")
        for i, task in enumerate(tasks):
            self.set_task(task, [i])

    def get_task(self, index: int = 0) -> Any:
        """The task of env ``index``."""
        return self._read_task(self._check_index(index))

    # -- gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every env (or those of ``options["reset_mask"]``); ``seed`` an int (env ``i`` gets
        ``seed + i``) or one seed per env."""
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(
                    f"seed must be None, an int or {self.num_envs} seeds, got {len(seeds)} seeds"
                )
        mask = None if options is None else options.get("reset_mask")
        if mask is None:
            indices = np.arange(self.num_envs)
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), got {mask!r}"
                )
            indices = np.flatnonzero(mask)
        for i in indices.tolist():
            if seeds[i] is not None:
                self._np_randoms[i], self._np_random_seeds[i] = seeding.np_random(seeds[i])
        self._reset_envs(indices)
        self._elapsed[indices] = 0
        infos = self._reset_info(indices)
        if mask is not None:
            for key in list(infos):
                full = np.zeros((self.num_envs, *infos[key].shape[1:]), dtype=infos[key].dtype)
                full[indices] = infos[key]
                infos[key] = full
                infos[f"_{key}"] = mask.copy()
        else:
            infos = self._with_masks(infos)
        return self._observe(), infos

    def _with_masks(self, infos: dict[str, np.ndarray]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in infos.items():
            out[key] = value
            out[f"_{key}"] = np.ones(self.num_envs, dtype=np.bool_)
        return out

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape != self._action_shape:
            raise ValueError(f"actions must have shape {self._action_shape}, got shape {actions.shape}")
        obs, rewards, terminated, step_infos = self._step_envs(actions)
        self._elapsed += 1
        if self.max_episode_steps is None:
            truncated = np.zeros(self.num_envs, dtype=np.bool_)
        else:
            truncated = self._elapsed >= self.max_episode_steps
        done = terminated | truncated
        if not done.any():
            return obs, rewards, terminated, truncated, self._with_masks(step_infos)
        # SAME_STEP autoreset: the finished envs' last observations and infos go to final_obs and
        # final_info, their rows and main infos become those of the next episode's reset
        ended = np.flatnonzero(done)
        final_obs = np.full(self.num_envs, None, dtype=object)
        for i in ended.tolist():
            final_obs[i] = _row(obs, i)
        final_info: dict[str, Any] = {}
        for key, value in step_infos.items():
            masked = np.zeros_like(value)
            masked[ended] = value[ended]
            final_info[key], final_info[f"_{key}"] = masked, done.copy()
        self._reset_envs(ended)
        self._elapsed[ended] = 0
        obs = self._observe()
        reset_infos = self._reset_info(ended)
        infos: dict[str, Any] = {}
        keys = list(step_infos) + [key for key in reset_infos if key not in step_infos]
        for key in keys:
            if key in step_infos:
                value, mask = step_infos[key].copy(), ~done
            else:
                template = reset_infos[key]
                value = np.zeros((self.num_envs, *template.shape[1:]), dtype=template.dtype)
                mask = np.zeros(self.num_envs, dtype=np.bool_)
            if key in reset_infos:
                value[ended] = reset_infos[key]
                mask = mask | done
            elif done.all():
                continue  # no env reports this key (as Gymnasium's SyncVectorEnv leaves it out)
            else:
                value[ended] = 0
            infos[key], infos[f"_{key}"] = value, mask
        infos["final_obs"], infos["_final_obs"] = final_obs, done.copy()
        infos["final_info"], infos["_final_info"] = final_info, done.copy()
        return obs, rewards, terminated, truncated, infos

    def render(self) -> tuple[Any, ...] | None:
        """``(frame,)``: a frame of env ``render_index`` (None without a render mode)."""
        if self.render_mode is None:
            return None
        return (self._render_one(self.render_index),)

    # -- what a family implements ---------------------------------------------------------------
    def _check_task(self, task: Any) -> Any:
        raise NotImplementedError

    def _write_task(self, task: Any, indices: np.ndarray) -> None:
        raise NotImplementedError

    def _read_task(self, index: int) -> Any:
        raise NotImplementedError

    def _reset_envs(self, indices: np.ndarray) -> None:
        raise NotImplementedError

    def _observe(self) -> Any:
        raise NotImplementedError

    def _reset_info(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _step_envs(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError

    def _render_one(self, index: int) -> Any:
        raise NotImplementedError


def _row(obs: Any, i: int) -> Any:
    if isinstance(obs, dict):
        return {key: value[i].copy() for key, value in obs.items()}
    return obs[i].copy()
