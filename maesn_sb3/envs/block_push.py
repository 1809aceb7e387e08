"""Manipulation: a planar gripper must push one of five blocks to a goal it cannot see (MAESN, sec. 5)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces

from maesn_sb3.envs._goals import check_goal, where
from maesn_sb3.envs._mujoco_base import GoalTaskMujocoEnv, check_positive
from maesn_sb3.validators import check_int

N_BLOCKS = 5
BLOCK_X_RANGE = (0.35, 0.65)
GOAL_X_RANGE = (0.75, 0.95)
#: block ``i`` (and a goal for block ``i``) lies in the y band ``[-0.5 + 0.2 i, -0.3 + 0.2 i]``
Y_BANDS = tuple((-0.5 + 0.2 * i, -0.3 + 0.2 * i) for i in range(N_BLOCKS))
_TARGET_RGBA = np.array([0.1, 0.6, 0.2, 1.0], dtype=np.float32)


def block_push_far_reward(gx: float, gy: float) -> float:
    """The sparse reward away from the goal ``(gx, gy)``: the dense reward of a block at the origin."""
    return -5.0 * math.hypot(gx, gy)


def block_push_reward(distance: Any, far_reward: Any, goal_radius: float) -> tuple[Any, Any, Any]:
    """BlockPush's ``(dense, sparse, inside)`` for one env (floats) or a batch (arrays), bit for bit alike.

    ``dense = -5 distance`` (the target block's distance to the goal); ``sparse`` is ``dense`` within
    ``goal_radius`` of the goal, else ``far_reward`` (:func:`block_push_far_reward`).
    """
    inside = distance <= goal_radius
    dense = -5.0 * distance
    return dense, where(inside, dense, far_reward), inside


class BlockPushEnv(GoalTaskMujocoEnv):
    """A planar 3-DoF gripper starting at the origin must push the target block onto an unseen goal.

    Scene (``assets/block_push.xml``): zero gravity; a gripper on x/y slides and a wrist hinge (a
    U of palm and two fingers opening towards +x, top speed about 1 m/s) and five boxes of side
    0.08 on x/y slides (no rotation), damped so they stop soon after a push. Timestep 0.01 s,
    frame skip 5 (dt 0.05 s); horizon 100 when registered as ``maesn_sb3/BlockPush-v0``.

    - Observation (26, float32): ``qpos`` (gripper x, y, angle; x, y of blocks 0-4) and ``qvel``.
      Neither the goal nor which block is the target appears in it.
    - Action (3): forces on the gripper's x and y slides and the wrist torque, each in [-1, 1];
      larger actions are clamped to the actuator range, as MuJoCo clamps ``ctrl``.
    - Tasks: ``{"layout": array (5, 2), "target": int, "goal": array (2,)}``. A layout puts block
      ``i`` at x uniform in [0.35, 0.65] and y uniform in its band ``[-0.5 + 0.2 i, -0.3 + 0.2 i]``;
      the goal has x uniform in [0.75, 0.95] and y uniform in the target block's band.
      :meth:`sample_tasks` draws layouts and gives each of them all five targets in turn (the
      paper's 20 layouts x 5 target blocks = 100 tasks), so ``sample_tasks(200)`` is 40 layouts.
      ``set_task`` switches goal and target at once; the layout is applied at the next ``reset``.
    - A fixed, seeded split of 100 training and 100 held-out tasks, as in the paper:
      ``TaskSet.from_env("maesn_sb3/BlockPush-v0", n_train=100, n_test=100, seed=0)``.
    - ``reward_type="dense"`` (meta-training): ``-5 dist(target block, goal)``.
      ``"sparse"`` (meta-test): the dense reward inside ``goal_radius`` (0.2), else the constant
      ``-5 |goal|``.
    - ``info["distance"]``: distance of the target block to the goal; ``info["is_success"]``: True
      once the target block has been within ``goal_radius`` of the goal in the episode;
      ``info["sparse_reward"]``: the sparse reward whatever ``reward_type`` is.
    - Rendering: ``render_mode="rgb_array"`` through the top-down ``overview`` camera (the whole
      workspace, the goal marker as a disc of the success radius, the target block in green).
      Headless machines need ``MUJOCO_GL=egl`` (or ``osmesa``) set before the first render.

    Deviations from the paper: layouts in which two blocks of neighbouring bands come closer than
    ``min_block_gap`` (0.1) in y are redrawn, so that no two blocks overlap and any block can be
    pushed along x past its neighbours; the body, masses, gains and damping are ours. The start is
    deterministic (gripper at the origin, blocks at the layout), as the layout already varies.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> env = gym.make("maesn_sb3/BlockPush-v0")
        >>> task = env.unwrapped.sample_tasks(5)[2]
        >>> env.unwrapped.set_task(task)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, task["target"]
        ((26,), 2)
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 20}

    def __init__(
        self,
        reward_type: str = "dense",
        goal_radius: float = 0.2,
        min_block_gap: float = 0.1,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str | None = None,
        camera_id: int | None = None,
    ) -> None:
        self.goal_radius = check_positive("goal_radius", goal_radius)
        self.min_block_gap = check_positive("min_block_gap", min_block_gap)
        if self.min_block_gap > 0.15:
            raise ValueError(f"min_block_gap must be <= 0.15 (bands are 0.2 wide), got {min_block_gap!r}")
        observation_space = spaces.Box(-np.inf, np.inf, shape=(26,), dtype=np.float32)
        super().__init__(
            "block_push.xml",
            5,
            observation_space,
            reward_type,
            render_mode,
            width,
            height,
            camera_name,
            camera_id,
            goal_radius=goal_radius,
            min_block_gap=min_block_gap,
        )
        self._qpos, self._qvel = self.data.qpos, self.data.qvel
        self._block_geoms = [self.model.geom(f"block_{i}").id for i in range(N_BLOCKS)]
        self._block_rgba = self.model.geom_rgba[self._block_geoms].copy()
        self._set_goal_marker_radius(self.goal_radius)
        layout = np.array([[0.5, (lo + hi) / 2] for lo, hi in Y_BANDS])
        self._task: dict[str, Any] = {}
        self._tx_index = 3
        self._gx = self._gy = 0.0
        self._sparse_reward = 0.0
        self._reached = False
        self.set_task({"layout": layout, "target": 2, "goal": np.array([0.85, 0.0])})

    # -- task API -------------------------------------------------------------------------------
    def _sample_layout(self) -> np.ndarray:
        rng = self.np_random
        while True:
            layout = np.empty((N_BLOCKS, 2))
            layout[:, 0] = rng.uniform(*BLOCK_X_RANGE, size=N_BLOCKS)
            layout[:, 1] = [rng.uniform(lo, hi) for lo, hi in Y_BANDS]
            if np.all(np.diff(layout[:, 1]) >= self.min_block_gap):
                return layout

    def sample_tasks(self, n: int) -> list[dict[str, Any]]:
        """Draw ``ceil(n / 5)`` layouts, each with its five targets in turn, and keep the first ``n``."""
        n = check_int("n", n, minimum=0)
        rng = self.np_random
        tasks = []
        for _ in range(-(-int(n) // N_BLOCKS)):
            layout = self._sample_layout()
            for target in range(N_BLOCKS):
                goal = np.array([rng.uniform(*GOAL_X_RANGE), rng.uniform(*Y_BANDS[target])])
                tasks.append({"layout": layout.copy(), "target": target, "goal": goal})
        return tasks[:n]

    def set_task(self, task: dict[str, Any]) -> None:
        """Switch to ``task``: goal and target at once, the block layout from the next ``reset``."""
        goal = check_goal(task, ("layout", "target"))
        layout = np.asarray(task["layout"], dtype=np.float64)
        if layout.shape != (N_BLOCKS, 2) or not np.all(np.isfinite(layout)):
            raise ValueError(f"task['layout'] must be a finite array of shape (5, 2), got {task['layout']!r}")
        target = task["target"]
        if (
            isinstance(target, bool)
            or not isinstance(target, (int, np.integer))
            or not 0 <= target < N_BLOCKS
        ):
            raise ValueError(f"task['target'] must be an int in [0, 5), got {target!r}")
        self._task = {"layout": layout.copy(), "target": int(target), "goal": goal}
        self._tx_index = 3 + 2 * int(target)
        self._gx, self._gy = float(goal[0]), float(goal[1])
        self._sparse_reward = block_push_far_reward(self._gx, self._gy)
        self._move_goal_marker(goal)
        self.model.geom_rgba[self._block_geoms] = self._block_rgba
        self.model.geom_rgba[self._block_geoms[int(target)]] = _TARGET_RGBA

    def position_indices(self) -> tuple[int, int]:
        """Observation indices of the target block's x and y: the reward scores it, not the gripper."""
        return self._tx_index, self._tx_index + 1

    def get_task(self) -> dict[str, Any]:
        task = self._task
        return {"layout": task["layout"].copy(), "target": task["target"], "goal": task["goal"].copy()}

    # -- gymnasium API --------------------------------------------------------------------------
    def _obs(self) -> np.ndarray:
        obs = np.empty(26, dtype=np.float32)
        obs[:13] = self._qpos
        obs[13:] = self._qvel
        return obs

    def _distance(self) -> float:
        i = self._tx_index
        qpos = self._qpos
        return math.hypot(qpos[i] - self._gx, qpos[i + 1] - self._gy)

    def reset_model(self) -> np.ndarray:
        qpos = self.init_qpos.copy()
        qpos[:3] = 0.0
        qpos[3:] = self._task["layout"].ravel()
        self.set_state(qpos, np.zeros(self.model.nv))
        self._reached = self._distance() <= self.goal_radius
        return self._obs()

    def _get_reset_info(self) -> dict[str, Any]:
        return {"distance": self._distance(), "is_success": self._reached}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._apply_action(action, cost=False)
        distance = self._distance()
        dense, sparse, inside = block_push_reward(distance, self._sparse_reward, self.goal_radius)
        if inside:
            self._reached = True
        info = {"distance": distance, "is_success": self._reached, "sparse_reward": sparse}
        return self._obs(), sparse if self.sparse else dense, False, False, info
