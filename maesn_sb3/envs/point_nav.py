"""A 2D point that must find a goal it cannot see: the fast task family."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from maesn_sb3.envs._goals import REWARD_TYPES, check_goal, semicircle_goals, where


def point_nav_reward(distance: Any, goal_radius: float) -> tuple[Any, Any, Any]:
    """PointNav2D's ``(dense, sparse, inside)`` for one env (floats) or a batch (arrays), bit for bit alike.

    ``dense = -distance``; ``sparse`` is 1 within ``goal_radius`` of the goal, else 0.
    """
    inside = distance <= goal_radius
    return -distance, where(inside, 1.0, 0.0), inside


class PointNav2DEnv(gym.Env):
    """A point starting at the origin moves by ``step_size * action`` per step.

    Tasks are goals on a semicircle of radius ``goal_distance`` (angle uniform in [0, pi]); the goal
    never appears in the observation (the point's position). Rewards: ``"dense"`` is the negative
    distance to the goal, ``"sparse"`` is 1 inside ``goal_radius`` of the goal and 0 elsewhere.
    ``info["is_success"]`` is True once the goal has been reached in the episode; ``info["distance"]``
    is the current distance and ``info["sparse_reward"]`` the sparse reward whatever ``reward_type``
    is. The horizon comes from ``max_episode_steps`` (50 when registered).

    Tasks are dicts ``{"goal": array of shape (2,)}``.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> env = gym.make("maesn_sb3/PointNav2D-v0", reward_type="sparse")
        >>> obs, info = env.reset(seed=0)
        >>> env.unwrapped.set_task(env.unwrapped.sample_tasks(1)[0])
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        reward_type: str = "dense",
        goal_distance: float = 1.0,
        goal_radius: float = 0.2,
        step_size: float = 0.1,
        render_mode: str | None = None,
    ) -> None:
        if reward_type not in REWARD_TYPES:
            raise ValueError(f"reward_type must be one of {REWARD_TYPES}, got {reward_type!r}")
        for name, value in (
            ("goal_distance", goal_distance),
            ("goal_radius", goal_radius),
            ("step_size", step_size),
        ):
            numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            if not numeric or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.reward_type = reward_type
        self.sparse = reward_type == "sparse"
        self.goal_distance = float(goal_distance)
        self.goal_radius = float(goal_radius)
        self.step_size = float(step_size)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._goal = np.array([0.0, self.goal_distance])
        self._position = np.zeros(2)
        self._reached = False

    # -- task API -------------------------------------------------------------------------------
    def sample_tasks(self, n: int) -> list[dict[str, np.ndarray]]:
        """Draw ``n`` goals on the semicircle from the env's seeded generator."""
        return semicircle_goals(self.np_random, n, self.goal_distance)

    def set_task(self, task: dict[str, Any]) -> None:
        self._goal = check_goal(task)

    def get_task(self) -> dict[str, np.ndarray]:
        return {"goal": self._goal.copy()}

    # -- gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._position = np.zeros(2)
        self._reached = False
        distance = float(np.linalg.norm(self._goal))
        return self._position.astype(np.float32), {"distance": distance, "is_success": False}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._position = self._position + self.step_size * np.clip(action, -1.0, 1.0)
        dx, dy = self._position - self._goal
        distance = float((dx * dx + dy * dy) ** 0.5)
        dense, sparse_reward, inside = point_nav_reward(distance, self.goal_radius)
        self._reached = self._reached or inside
        reward = sparse_reward if self.sparse else dense
        info = {"distance": distance, "is_success": bool(self._reached), "sparse_reward": sparse_reward}
        return self._position.astype(np.float32), reward, False, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        size, scale = 200, 60.0
        image = np.full((size, size, 3), 255, dtype=np.uint8)
        yy, xx = np.mgrid[0:size, 0:size]

        def to_pixel(point: np.ndarray) -> tuple[float, float]:
            return size / 2 + scale * point[0], size * 0.8 - scale * point[1]

        gx, gy = to_pixel(self._goal)
        image[(xx - gx) ** 2 + (yy - gy) ** 2 <= (scale * self.goal_radius) ** 2] = (120, 220, 120)
        px, py = to_pixel(self._position)
        image[(xx - px) ** 2 + (yy - py) ** 2 <= 16] = (200, 40, 40)
        return image
