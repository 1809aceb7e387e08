"""PointNav2D as one batch of numpy arrays: the ``vector_entry_point`` of ``maesn_sb3/PointNav2D-v0``."""

from __future__ import annotations

from typing import Any

import numpy as np

from maesn_sb3.envs._goals import check_goal, semicircle_goals
from maesn_sb3.envs._vector_base import TaskVectorEnv
from maesn_sb3.envs.point_nav import PointNav2DEnv, point_nav_reward


class PointNav2DVectorEnv(TaskVectorEnv):
    """``num_envs`` :class:`~maesn_sb3.envs.PointNav2DEnv` stepped as arrays, one task per env.

    Env ``i`` gives the same observations, rewards, flags and infos as ``gym.make`` of the single env
    reset with the same seed, task and actions, bit for bit; it auto-resets in ``SAME_STEP`` mode.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> envs = gym.make_vec(
        ...     "maesn_sb3/PointNav2D-v0", num_envs=4, vectorization_mode="vector_entry_point"
        ... )
        >>> envs.unwrapped.set_task({"goal": [0.0, 1.0]}, indices=[0, 1])
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape, info["distance"].tolist()[:2]
        ((4, 2), [1.0, 1.0])

    :param num_envs: number of envs.
    :param reward_type: ``"dense"`` or ``"sparse"`` (as the single env).
    :param goal_distance: radius of the semicircle of goals.
    :param goal_radius: success radius.
    :param step_size: distance moved per unit action.
    :param max_episode_steps: the horizon (50 when made from the registered id).
    :param render_mode: None or ``"rgb_array"``.
    :param render_index: the env that :meth:`render` shows.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        num_envs: int = 1,
        reward_type: str = "dense",
        goal_distance: float = 1.0,
        goal_radius: float = 0.2,
        step_size: float = 0.1,
        max_episode_steps: int | None = 50,
        render_mode: str | None = None,
        render_index: int = 0,
    ) -> None:
        # the single env checks the arguments and draws the picture of one env
        self._single = PointNav2DEnv(reward_type, goal_distance, goal_radius, step_size, render_mode)
        super().__init__(
            num_envs,
            self._single.observation_space,
            self._single.action_space,
            max_episode_steps,
            render_mode,
            render_index,
        )
        self.reward_type = reward_type
        self.sparse = self._single.sparse
        self.goal_distance = self._single.goal_distance
        self.goal_radius = self._single.goal_radius
        self.step_size = self._single.step_size
        self._goals = np.tile(self._single.get_task()["goal"], (self.num_envs, 1))
        self._goal_norms = np.full(self.num_envs, float(np.linalg.norm(self._goals[0])))
        self._positions = np.zeros((self.num_envs, 2))
        self._reached = np.zeros(self.num_envs, dtype=np.bool_)

    # -- task API -------------------------------------------------------------------------------
    def sample_tasks(self, n: int, index: int = 0) -> list[dict[str, np.ndarray]]:
        """Draw ``n`` goals on the semicircle from env ``index``'s generator."""
        return semicircle_goals(self.env_np_random(index), n, self.goal_distance)

    def _check_task(self, task: Any) -> np.ndarray:
        return check_goal(task)

    def _write_task(self, task: np.ndarray, indices: np.ndarray) -> None:
        self._goals[indices] = task
        self._goal_norms[indices] = float(np.linalg.norm(task))

    def _read_task(self, index: int) -> dict[str, np.ndarray]:
        return {"goal": self._goals[index].copy()}

    # -- dynamics -------------------------------------------------------------------------------
    def _reset_envs(self, indices: np.ndarray) -> None:
        self._positions[indices] = 0.0
        self._reached[indices] = False

    def _observe(self) -> np.ndarray:
        return self._positions.astype(np.float32)

    def _reset_info(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "distance": self._goal_norms[indices].copy(),
            "is_success": np.zeros(len(indices), dtype=np.bool_),
        }

    def _step_envs(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        # the single env's arithmetic, row by row: same dtypes, same operations, same roundings
        self._positions = self._positions + self.step_size * np.clip(actions, -1.0, 1.0)
        delta = self._positions - self._goals
        dx, dy = delta[:, 0], delta[:, 1]
        # the single env takes a scalar ``** 0.5`` (libm's pow); an array ``** 0.5`` is a sqrt, which can
        # differ by one ulp, so the root is taken per env with the same pow
        distance = np.array([square**0.5 for square in (dx * dx + dy * dy).tolist()])
        dense, sparse_reward, inside = point_nav_reward(distance, self.goal_radius)
        self._reached |= inside
        rewards = sparse_reward.copy() if self.sparse else dense
        infos = {"distance": distance, "is_success": self._reached.copy(), "sparse_reward": sparse_reward}
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        return self._observe(), rewards, terminated, infos

    def _render_one(self, index: int) -> np.ndarray | None:
        self._single._goal = self._goals[index].copy()
        self._single._position = self._positions[index].copy()
        return self._single.render()
