"""Wheeled locomotion: a differential-drive car must find a goal it cannot see (MAESN, sec. 5)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces

from maesn_sb3.envs._goals import where
from maesn_sb3.envs._mujoco_base import GoalReachingMujocoEnv, check_positive


def wheeled_nav_reward(
    distance: Any, ctrl_cost: Any, goal_norm: Any, goal_radius: float
) -> tuple[Any, Any, Any]:
    """WheeledNav's ``(dense, sparse, inside)`` for one env (floats) or a batch (arrays), bit for bit alike.

    ``dense = -distance - ctrl_cost``; ``sparse`` is ``dense`` within ``goal_radius`` of the goal, else
    ``-|goal| - ctrl_cost`` (``goal_norm`` is ``|goal|``).
    """
    inside = distance <= goal_radius
    dense = -distance - ctrl_cost
    return dense, where(inside, dense, -goal_norm - ctrl_cost), inside


class WheeledNavEnv(GoalReachingMujocoEnv):
    """A two-wheeled car starting at the origin (facing +x) must drive to an unseen goal.

    Body (``assets/wheeled_nav.xml``): a chassis on free x/y/z slides and a z hinge (no roll or
    pitch), two wheel motors with control range +-2 and a frictionless rear caster. Top speed is
    about 1 m/s; opposite torques turn the car in place. Timestep 0.01 s, frame skip 5 (dt 0.05 s);
    horizon 200 steps when registered as ``maesn_sb3/WheeledNav-v0``.

    - Observation (12, float32): ``qpos`` (x, y, z, yaw, two wheel angles) and ``qvel``. The goal
      never appears in it.
    - Action (2): wheel torques in [-2, 2]; larger actions are clamped to the actuator range (as
      MuJoCo clamps ``ctrl``) and the control cost is charged on the applied control.
    - Tasks: ``{"goal": array (2,)}`` on the semicircle of radius ``goal_distance`` (2), angle
      uniform in [0, pi], drawn from ``self.np_random``.
    - A fixed, seeded split of 100 training and 100 held-out tasks, as in the paper:
      ``TaskSet.from_env("maesn_sb3/WheeledNav-v0", n_train=100, n_test=100, seed=0)``.
    - ``reward_type="dense"`` (meta-training): ``-dist(xy, goal) - 0.05 |a|^2``.
      ``"sparse"`` (meta-test): the dense reward inside ``goal_radius`` (0.8) of the goal, else the
      constant ``-|goal| - 0.05 |a|^2``.
    - ``info["distance"]``: the xy distance to the goal; ``info["is_success"]``: True once the car
      has been within ``goal_radius`` of the goal in the episode; ``info["sparse_reward"]``: the
      sparse reward whatever ``reward_type`` is (for an inner step on it, ``inner_reward_key``).
    - Rendering: ``render_mode="rgb_array"`` through the top-down ``overview`` camera, which shows
      the whole semicircle and the goal marker (a disc of the success radius). Headless machines
      need ``MUJOCO_GL=egl`` (or ``osmesa``) set before the first render.

    Deviations from the paper: the original rllab model is not public in a usable form, so the body,
    its masses and the motor gear (0.2 on a damped wheel: full speed in about 0.5 s) are ours,
    tuned so that the goal semicircle is reachable well within the horizon. Reset noise
    (``reset_noise_scale``, default 0.01) is added to the planar pose and wheel angles and to the
    velocities, never to the height.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> env = gym.make("maesn_sb3/WheeledNav-v0", reward_type="sparse")
        >>> obs, info = env.reset(seed=0)
        >>> env.unwrapped.set_task(env.unwrapped.sample_tasks(1)[0])
        >>> obs.shape
        (12,)
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 20}

    def __init__(
        self,
        reward_type: str = "dense",
        goal_distance: float = 2.0,
        goal_radius: float = 0.8,
        ctrl_cost_weight: float = 0.05,
        reset_noise_scale: float = 0.01,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str | None = None,
        camera_id: int | None = None,
    ) -> None:
        self.goal_distance = check_positive("goal_distance", goal_distance)
        self.goal_radius = check_positive("goal_radius", goal_radius)
        if not math.isfinite(ctrl_cost_weight) or ctrl_cost_weight < 0:
            raise ValueError(f"ctrl_cost_weight must be a finite number >= 0, got {ctrl_cost_weight!r}")
        if not math.isfinite(reset_noise_scale) or reset_noise_scale < 0:
            raise ValueError(f"reset_noise_scale must be a finite number >= 0, got {reset_noise_scale!r}")
        self.ctrl_cost_weight = float(ctrl_cost_weight)
        self.reset_noise_scale = float(reset_noise_scale)
        observation_space = spaces.Box(-np.inf, np.inf, shape=(12,), dtype=np.float32)
        super().__init__(
            "wheeled_nav.xml",
            5,
            observation_space,
            reward_type,
            render_mode,
            width,
            height,
            camera_name,
            camera_id,
            goal_distance=goal_distance,
            goal_radius=goal_radius,
            ctrl_cost_weight=ctrl_cost_weight,
            reset_noise_scale=reset_noise_scale,
        )
        self._goal_norm = 0.0
        # the height (slide_z, qpos[2]) gets no reset noise: it would push a wheel into the floor
        self._init_goal_task(np.array([0, 1, 3, 4, 5]))

    def _on_goal(self) -> None:
        self._goal_norm = math.hypot(self._gx, self._gy)

    # -- gymnasium API --------------------------------------------------------------------------
    def _obs(self) -> np.ndarray:
        obs = np.empty(12, dtype=np.float32)
        obs[:6] = self._qpos
        obs[6:] = self._qvel
        return obs

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        ctrl_cost = self.ctrl_cost_weight * self._apply_action(action)
        distance = self._distance()
        dense, sparse, inside = wheeled_nav_reward(distance, ctrl_cost, self._goal_norm, self.goal_radius)
        if inside:
            self._reached = True
        info = {"distance": distance, "is_success": self._reached, "sparse_reward": sparse}
        return self._obs(), sparse if self.sparse else dense, False, False, info
