"""Legged locomotion: a low-gear ant must walk to a goal it cannot see (MAESN, sec. 5)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from gymnasium import spaces

from maesn_sb3.envs._goals import where
from maesn_sb3.envs._mujoco_base import GoalReachingMujocoEnv, check_positive

_GRAVITY = 9.81


def ant_goal_term(gx: float, gy: float) -> float:
    """The sparse reward's goal term away from the goal, ``4 - L1(goal)``: a constant of the task."""
    return -(abs(gx) + abs(gy)) + 4.0


def ant_goal_reward(
    dx: Any,
    dy: Any,
    distance: Any,
    ctrl_cost: Any,
    contact: Iterable[Any],
    goal_term: Any,
    goal_radius: float,
    healthy_reward: float,
    contact_cost_weight: float,
) -> tuple[Any, Any, Any]:
    """AntGoal's ``(dense, sparse, inside)`` for one env (floats) or a batch (arrays), bit for bit alike.

    ``(dx, dy)`` is the torso's offset from the goal, ``contact`` the feet's contact forces over the
    ant's weight in order (a batch passes its columns), ``goal_term`` :func:`ant_goal_term`.
    ``dense = 4 - |dx| - |dy| + healthy_reward - ctrl_cost - contact_cost_weight * sum(min(c^2, 1))``;
    ``sparse`` is ``dense`` within ``goal_radius`` of the goal, else ``goal_term`` plus the same costs.
    """
    contact_sq = 0.0
    for c in contact:  # left to right: the same sum on one env and on a batch
        contact_sq = contact_sq + where(c > 1.0, 1.0, c * c)
    inside = distance <= goal_radius
    rest = healthy_reward - ctrl_cost - contact_cost_weight * contact_sq
    dense = 4.0 - abs(dx) - abs(dy) + rest
    return dense, where(inside, dense, goal_term + rest), inside


class AntGoalEnv(GoalReachingMujocoEnv):
    """The quadruped ant, with a low gear ratio (30), starts at the origin and must reach an unseen goal.

    Body (``assets/ant_goal.xml``, our own MJCF of the classic ant): a sphere torso on a free joint,
    four two-joint legs, motors with gear 30 and control range [-1, 1], touch sensors on the feet.
    Timestep 0.01 s, frame skip 5 (dt 0.05 s); horizon 200 when registered as
    ``maesn_sb3/AntGoal-v0``. Under zero action the ant stands with its torso near z = 0.6.

    - Observation (33, float32): ``qpos`` (15: torso xyz, quaternion, 8 joint angles), ``qvel`` (14)
      and the normal contact force on each foot divided by the ant's weight (4). The goal never
      appears in it.
    - Action (8): joint torques in [-1, 1] (times gear 30); larger actions are clamped to the
      actuator range and the control cost is charged on the applied control.
    - Tasks: ``{"goal": array (2,)}`` on the semicircle of radius ``goal_distance`` (2), angle
      uniform in [0, pi], drawn from ``self.np_random``.
    - A fixed, seeded split of 100 training and 100 held-out tasks, as in the paper:
      ``TaskSet.from_env("maesn_sb3/AntGoal-v0", n_train=100, n_test=100, seed=0)``.
    - ``reward_type="dense"`` (meta-training):
      ``-L1(torso_xy, goal) + 4 - 0.005 |a|^2 - 0.0005 |min(contact, 1)|^2 + 0.05``.
      ``"sparse"`` (meta-test): the same, except that outside the L2 radius ``goal_radius`` (0.8)
      the goal term ``-L1(torso_xy, goal) + 4`` is replaced by the constant ``-L1(goal) + 4``.
    - Termination: when the torso height leaves ``healthy_z_range`` ([0.2, 1.0]).
    - ``info["distance"]``: the L2 xy distance of the torso to the goal; ``info["is_success"]``:
      True once the torso has been within ``goal_radius`` (L2) of the goal in the episode;
      ``info["sparse_reward"]``: the sparse reward whatever ``reward_type`` is.
    - Rendering: ``render_mode="rgb_array"`` through the top-down ``overview`` camera, which shows
      the whole semicircle and the goal marker (a disc of the success radius). Headless machines
      need ``MUJOCO_GL=egl`` (or ``osmesa``) set before the first render.

    Deviations from the paper (rllab's ant): contact forces come from four foot touch sensors,
    normalised by the ant's weight, instead of the 84 clipped ``cfrc_ext`` values (these need an
    extra ``mj_rnePostConstraint`` pass every step; the touch sensors are computed inside
    ``mj_step``); the redundant torso rotation matrix and position are left out of the observation
    (the quaternion and position are in ``qpos``); the integrator is ``implicitfast`` instead of RK4
    (four times cheaper per step, stable with the ant's joint damping). Reset noise
    (``reset_noise_scale``, default 0.01, Gaussian) is added to the joint angles, the planar
    position and the velocities.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> env = gym.make("maesn_sb3/AntGoal-v0")
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape
        (33,)
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 20}

    def __init__(
        self,
        reward_type: str = "dense",
        goal_distance: float = 2.0,
        goal_radius: float = 0.8,
        ctrl_cost_weight: float = 0.005,
        contact_cost_weight: float = 0.0005,
        healthy_reward: float = 0.05,
        healthy_z_range: tuple[float, float] = (0.2, 1.0),
        reset_noise_scale: float = 0.01,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str | None = None,
        camera_id: int | None = None,
    ) -> None:
        self.goal_distance = check_positive("goal_distance", goal_distance)
        self.goal_radius = check_positive("goal_radius", goal_radius)
        for name, value in (
            ("ctrl_cost_weight", ctrl_cost_weight),
            ("contact_cost_weight", contact_cost_weight),
            ("reset_noise_scale", reset_noise_scale),
        ):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not math.isfinite(healthy_reward):
            raise ValueError(f"healthy_reward must be finite, got {healthy_reward!r}")
        z_range = tuple(healthy_z_range)
        if len(z_range) != 2 or not all(math.isfinite(z) for z in z_range) or z_range[0] >= z_range[1]:
            raise ValueError(f"healthy_z_range must be (low, high) with low < high, got {healthy_z_range!r}")
        self.ctrl_cost_weight = float(ctrl_cost_weight)
        self.contact_cost_weight = float(contact_cost_weight)
        self.healthy_reward = float(healthy_reward)
        self.healthy_z_range = (float(z_range[0]), float(z_range[1]))
        self.reset_noise_scale = float(reset_noise_scale)
        observation_space = spaces.Box(-np.inf, np.inf, shape=(33,), dtype=np.float32)
        super().__init__(
            "ant_goal.xml",
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
            contact_cost_weight=contact_cost_weight,
            healthy_reward=healthy_reward,
            healthy_z_range=healthy_z_range,
            reset_noise_scale=reset_noise_scale,
        )
        self._touch = self.data.sensordata  # the four foot sensors, in newtons
        self._inv_weight = 1.0 / (_GRAVITY * float(self.model.body_subtreemass[1]))
        self._const_goal_term = 0.0
        # no reset noise on the height or the quaternion: the ant starts upright
        self._init_goal_task(np.array([0, 1, *range(7, 15)]))

    def _on_goal(self) -> None:
        self._const_goal_term = ant_goal_term(self._gx, self._gy)

    # -- gymnasium API --------------------------------------------------------------------------
    def _obs(self) -> np.ndarray:
        obs = np.empty(33, dtype=np.float32)
        obs[:15] = self._qpos
        obs[15:29] = self._qvel
        np.multiply(self._touch, self._inv_weight, out=obs[29:], casting="same_kind")
        return obs

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        ctrl_cost = self.ctrl_cost_weight * self._apply_action(action)
        qpos = self._qpos
        obs = np.empty(33, dtype=np.float32)
        obs[:15] = qpos
        obs[15:29] = self._qvel
        inv_weight = self._inv_weight
        contact = [force * inv_weight for force in self._touch.tolist()]
        obs[29:] = contact
        x, y, z = qpos[:3].tolist()
        dx, dy = x - self._gx, y - self._gy
        distance = math.hypot(dx, dy)
        dense, sparse, inside = ant_goal_reward(
            dx,
            dy,
            distance,
            ctrl_cost,
            contact,
            self._const_goal_term,
            self.goal_radius,
            self.healthy_reward,
            self.contact_cost_weight,
        )
        if inside:
            self._reached = True
        low, high = self.healthy_z_range
        terminated = not (low <= z <= high)
        info = {"distance": distance, "is_success": self._reached, "sparse_reward": sparse}
        return obs, sparse if self.sparse else dense, terminated, False, info
