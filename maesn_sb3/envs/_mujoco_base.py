"""Shared plumbing of the MuJoCo task families: reward types, goal marker, task checks, rendering.

Rendering headless needs an OpenGL backend chosen before ``mujoco`` creates its first context:
set ``MUJOCO_GL=egl`` (GPU or Mesa EGL, e.g. Debian's ``libegl1`` + ``libegl-mesa0``) or
``MUJOCO_GL=osmesa`` (``libosmesa6``) in the environment before rendering.
"""

from __future__ import annotations

import math
import os
from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.utils import EzPickle

from maesn_sb3.envs._goals import REWARD_TYPES, check_goal, semicircle_goals
from maesn_sb3.validators import check_int

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float, or a ``ValueError`` naming ``name`` unless it is finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class GoalTaskMujocoEnv(MujocoEnv, EzPickle):
    """Base class of a MuJoCo task family whose tasks carry a 2D goal shown by a marker site.

    Subclasses set ``self._goal`` through :meth:`set_task` and call :meth:`_move_goal_marker`.
    The renderer uses the model's ``overview`` camera unless ``camera_name``/``camera_id`` is given.
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"]}

    def __init__(
        self,
        xml_file: str,
        frame_skip: int,
        observation_space: Any,
        reward_type: str,
        render_mode: str | None,
        width: int,
        height: int,
        camera_name: str | None,
        camera_id: int | None,
        **ezpickle_kwargs: Any,
    ) -> None:
        if reward_type not in REWARD_TYPES:
            raise ValueError(f"reward_type must be one of {REWARD_TYPES}, got {reward_type!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        check_int("width", width)
        check_int("height", height)
        if camera_name is None and camera_id is None:
            camera_name = "overview"
        EzPickle.__init__(
            self,
            reward_type=reward_type,
            render_mode=render_mode,
            width=width,
            height=height,
            camera_name=camera_name,
            camera_id=camera_id,
            **ezpickle_kwargs,
        )
        self.reward_type = reward_type
        self.sparse = reward_type == "sparse"
        MujocoEnv.__init__(
            self,
            os.path.join(ASSETS, xml_file),
            frame_skip,
            observation_space=observation_space,
            render_mode=render_mode,
            width=width,
            height=height,
            camera_name=camera_name,
            camera_id=camera_id,
        )
        self._goal_site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, "goal")
        self._goal_centre_site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, "goal_centre")
        self._ctrl_bounds = [tuple(bounds) for bounds in self.model.actuator_ctrlrange.tolist()]
        self._action_shape = self.action_space.shape

    def _apply_action(self, action: Any, cost: bool = True) -> float:
        """Write ``action`` to ``ctrl`` and advance the simulation by ``frame_skip`` steps.

        MuJoCo clamps ``ctrl`` to the actuator range; the returned ``|ctrl|^2`` is that of the
        clamped (applied) control (0.0 when ``cost`` is False). Raises ``ValueError`` on a wrong
        shape or a non-finite action. Small loops in plain Python: for 2-8 actuators they beat
        numpy's per-call overhead.
        """
        shape = action.shape if isinstance(action, np.ndarray) else np.shape(action)
        if shape != self._action_shape:
            raise ValueError(f"action must have shape {self._action_shape}, got shape {shape}")
        ctrl = self.data.ctrl
        ctrl[:] = action
        if not cost:
            if not math.isfinite(sum(ctrl.tolist())):
                raise ValueError(f"action must be finite, got {action!r}")
            mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
            return 0.0
        sq = total = 0.0
        for x, (low, high) in zip(ctrl.tolist(), self._ctrl_bounds, strict=True):
            total += x  # inf or nan if any entry is not finite
            if x > high:
                x = high
            elif x < low:
                x = low
            sq += x * x
        if not math.isfinite(total):
            raise ValueError(f"action must be finite, got {action!r}")
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        return sq

    def position_indices(self) -> tuple[int, int]:
        """Observation indices of the x, y position the current task's reward scores (here the
        robot's, the first two entries); :func:`maesn_sb3.plotting.plot_exploration` draws its path."""
        return 0, 1

    def _move_goal_marker(self, goal: np.ndarray) -> None:
        # the marker sites hang on the world body: their world position is their model position,
        # written to data too so that a frame rendered before the next step shows the new goal
        for site in (self._goal_site, self._goal_centre_site):
            if site >= 0:
                self.model.site_pos[site, :2] = goal
                self.data.site_xpos[site, :2] = goal

    def _set_goal_marker_radius(self, radius: float) -> None:
        if self._goal_site >= 0:
            self.model.site_size[self._goal_site, 0] = radius

    def reset_model(self) -> np.ndarray:  # pragma: no cover - subclasses override
        raise NotImplementedError


class GoalReachingMujocoEnv(GoalTaskMujocoEnv):
    """Base of the goal-reaching families (WheeledNav, AntGoal): a body starts near the origin and must
    reach an unseen goal on the upper semicircle of radius ``goal_distance``; a task is ``{"goal": (x, y)}``.

    It holds their task methods, reset and distance. A subclass calls :meth:`_init_goal_task` at the end
    of its ``__init__``, defines ``_obs`` and ``step``, and may precompute per-goal terms in
    :meth:`_on_goal`.
    """

    goal_distance: float
    goal_radius: float
    reset_noise_scale: float

    def _init_goal_task(self, noisy_qpos: np.ndarray) -> None:
        """Set up the goal state (goal ``(0, goal_distance)``); ``noisy_qpos`` are the joint positions
        that get reset noise."""
        self._qpos, self._qvel = self.data.qpos, self.data.qvel
        self._noisy_qpos = np.asarray(noisy_qpos)
        self._set_goal_marker_radius(self.goal_radius)
        self._goal = np.zeros(2)
        self._gx = self._gy = 0.0
        self._reached = False
        self.set_task({"goal": np.array([0.0, self.goal_distance])})

    # -- task API -------------------------------------------------------------------------------
    def sample_tasks(self, n: int) -> list[dict[str, np.ndarray]]:
        """Draw ``n`` goals on the upper semicircle of radius ``goal_distance``."""
        return semicircle_goals(self.np_random, n, self.goal_distance)

    def set_task(self, task: dict[str, Any]) -> None:
        """Switch to ``task`` (a dict with a finite ``"goal"`` of shape (2,)), effective at once."""
        goal = check_goal(task)
        self._goal = goal
        self._gx, self._gy = float(goal[0]), float(goal[1])
        self._on_goal()
        self._move_goal_marker(goal)

    def get_task(self) -> dict[str, np.ndarray]:
        return {"goal": self._goal.copy()}

    def _on_goal(self) -> None:
        """Precompute what the reward needs of a new goal (``self._gx``, ``self._gy``); nothing here."""

    # -- gymnasium API --------------------------------------------------------------------------
    def _obs(self) -> np.ndarray:  # pragma: no cover - subclasses override
        raise NotImplementedError

    def _distance(self) -> float:
        qpos = self._qpos
        return math.hypot(qpos[0] - self._gx, qpos[1] - self._gy)

    def reset_model(self) -> np.ndarray:
        qpos, qvel = self.init_qpos.copy(), self.init_qvel.copy()
        scale = self.reset_noise_scale
        if scale > 0:
            qpos[self._noisy_qpos] += scale * self.np_random.standard_normal(self._noisy_qpos.size)
            qvel += scale * self.np_random.standard_normal(qvel.size)
        self.set_state(qpos, qvel)  # mj_forward: fills sensors (the ant's touch) too
        self._reached = self._distance() <= self.goal_radius
        return self._obs()

    def _get_reset_info(self) -> dict[str, Any]:
        return {"distance": self._distance(), "is_success": self._reached}
