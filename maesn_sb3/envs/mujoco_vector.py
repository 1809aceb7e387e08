"""WheeledNav, AntGoal and BlockPush batched on ``mujoco.batch`` (or a loop of ``MjData``): the
``vector_entry_point`` of their Gymnasium ids. Env ``i`` of a batch gives what the single env gives for
the same seed, task and actions, bit for bit (same ``mj_step``s, same arithmetic, same draws)."""

from __future__ import annotations

from typing import Any

import numpy as np

from maesn_sb3.envs._mujoco_vector import GoalMujocoVectorEnv, MujocoTaskVectorEnv
from maesn_sb3.envs.ant_goal import AntGoalEnv, ant_goal_reward
from maesn_sb3.envs.block_push import N_BLOCKS, BlockPushEnv, block_push_far_reward, block_push_reward
from maesn_sb3.envs.wheeled_nav import WheeledNavEnv, wheeled_nav_reward

__all__ = ["AntGoalVectorEnv", "BlockPushVectorEnv", "WheeledNavVectorEnv"]

_COMMON_DOC = """
    :param num_envs: number of envs.
    :param max_episode_steps: the horizon (the registered one when made from the id).
    :param render_index: the env that ``render()`` shows (``render_mode="rgb_array"``).
    :param threads: threads of ``mujoco.batch`` (>= 1); default: the cores the process may use.
    :param use_mujoco_batch: False forces the per-env ``MjData`` loop (MuJoCo 3.x's path);
        default: ``mujoco.batch`` where this MuJoCo has it.
    The other arguments are the single env's."""


class WheeledNavVectorEnv(GoalMujocoVectorEnv):
    """``num_envs`` :class:`~maesn_sb3.envs.wheeled_nav.WheeledNavEnv` as one batch (SAME_STEP autoreset).

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> envs = gym.make_vec("maesn_sb3/WheeledNav-v0", num_envs=8, threads=1)
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape
        (8, 12)
    """

    __doc__ = (__doc__ or "") + _COMMON_DOC
    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 20}

    def __init__(
        self,
        num_envs: int = 1,
        reward_type: str = "dense",
        goal_distance: float = 2.0,
        goal_radius: float = 0.8,
        ctrl_cost_weight: float = 0.05,
        reset_noise_scale: float = 0.01,
        max_episode_steps: int | None = 200,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str | None = None,
        camera_id: int | None = None,
        render_index: int = 0,
        threads: int | None = None,
        use_mujoco_batch: bool | None = None,
    ) -> None:
        single = WheeledNavEnv(
            reward_type,
            goal_distance,
            goal_radius,
            ctrl_cost_weight,
            reset_noise_scale,
            render_mode,
            width,
            height,
            camera_name,
            camera_id,
        )
        super().__init__(single, num_envs, max_episode_steps, render_index, threads, use_mujoco_batch)
        self.goal_distance, self.goal_radius = single.goal_distance, single.goal_radius
        self.ctrl_cost_weight, self.reset_noise_scale = single.ctrl_cost_weight, single.reset_noise_scale
        self._noisy_qpos = single._noisy_qpos
        self._init_goals()

    def _reset_envs(self, indices: np.ndarray) -> None:
        qpos, qvel = self._noisy_states(indices, self._noisy_qpos, self.reset_noise_scale)
        self.physics.reset(indices, qpos, qvel)
        self._distance[indices] = distance = self._goal_distances(indices)
        self._reached[indices] = distance <= self.goal_radius

    def _observe(self) -> np.ndarray:
        obs = np.empty((self.num_envs, 12), dtype=np.float32)
        obs[:, :6] = self.physics.qpos
        obs[:, 6:] = self.physics.qvel
        return obs

    def _step_envs(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        ctrl, sq = self._controls(actions)
        ctrl_cost = self.ctrl_cost_weight * sq
        self.physics.step(ctrl)
        distance = self._goal_distances()
        dense, sparse, inside = wheeled_nav_reward(distance, ctrl_cost, self._goal_norms, self.goal_radius)
        self._reached |= inside
        infos = {"distance": distance, "is_success": self._reached.copy(), "sparse_reward": sparse}
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        return self._observe(), sparse if self.sparse else dense, terminated, infos


class AntGoalVectorEnv(GoalMujocoVectorEnv):
    """``num_envs`` :class:`~maesn_sb3.envs.ant_goal.AntGoalEnv` as one batch (SAME_STEP autoreset).

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> envs = gym.make_vec("maesn_sb3/AntGoal-v0", num_envs=8, threads=1)
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape
        (8, 33)
    """

    __doc__ = (__doc__ or "") + _COMMON_DOC
    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 20}

    def __init__(
        self,
        num_envs: int = 1,
        reward_type: str = "dense",
        goal_distance: float = 2.0,
        goal_radius: float = 0.8,
        ctrl_cost_weight: float = 0.005,
        contact_cost_weight: float = 0.0005,
        healthy_reward: float = 0.05,
        healthy_z_range: tuple[float, float] = (0.2, 1.0),
        reset_noise_scale: float = 0.01,
        max_episode_steps: int | None = 200,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str | None = None,
        camera_id: int | None = None,
        render_index: int = 0,
        threads: int | None = None,
        use_mujoco_batch: bool | None = None,
    ) -> None:
        single = AntGoalEnv(
            reward_type,
            goal_distance,
            goal_radius,
            ctrl_cost_weight,
            contact_cost_weight,
            healthy_reward,
            healthy_z_range,
            reset_noise_scale,
            render_mode,
            width,
            height,
            camera_name,
            camera_id,
        )
        super().__init__(single, num_envs, max_episode_steps, render_index, threads, use_mujoco_batch)
        self.goal_distance, self.goal_radius = single.goal_distance, single.goal_radius
        self.ctrl_cost_weight, self.contact_cost_weight = single.ctrl_cost_weight, single.contact_cost_weight
        self.healthy_reward, self.healthy_z_range = single.healthy_reward, single.healthy_z_range
        self.reset_noise_scale = single.reset_noise_scale
        self._noisy_qpos = single._noisy_qpos
        self._inv_weight = single._inv_weight
        self._init_goals()

    def _reset_envs(self, indices: np.ndarray) -> None:
        qpos, qvel = self._noisy_states(indices, self._noisy_qpos, self.reset_noise_scale)
        self.physics.reset(indices, qpos, qvel)  # mj_forward: the touch sensors too
        self._distance[indices] = distance = self._goal_distances(indices)
        self._reached[indices] = distance <= self.goal_radius

    def _observe(self, contact: np.ndarray | None = None) -> np.ndarray:
        obs = np.empty((self.num_envs, 33), dtype=np.float32)
        obs[:, :15] = self.physics.qpos
        obs[:, 15:29] = self.physics.qvel
        obs[:, 29:] = self.physics.sensordata * self._inv_weight if contact is None else contact
        return obs

    def _step_envs(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        ctrl, sq = self._controls(actions)
        ctrl_cost = self.ctrl_cost_weight * sq
        self.physics.step(ctrl)
        contact = self.physics.sensordata * self._inv_weight
        qpos = self.physics.qpos
        dx, dy, z = qpos[:, 0] - self._goals[:, 0], qpos[:, 1] - self._goals[:, 1], qpos[:, 2]
        distance = self._hypot(dx, dy)
        dense, sparse, inside = ant_goal_reward(
            dx,
            dy,
            distance,
            ctrl_cost,
            contact.T,
            self._goal_l1,
            self.goal_radius,
            self.healthy_reward,
            self.contact_cost_weight,
        )
        self._reached |= inside
        low, high = self.healthy_z_range
        terminated = ~((low <= z) & (z <= high))
        infos = {"distance": distance, "is_success": self._reached.copy(), "sparse_reward": sparse}
        return self._observe(contact), sparse if self.sparse else dense, terminated, infos


class BlockPushVectorEnv(MujocoTaskVectorEnv):
    """``num_envs`` :class:`~maesn_sb3.envs.block_push.BlockPushEnv` as one batch (SAME_STEP autoreset).

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> envs = gym.make_vec("maesn_sb3/BlockPush-v0", num_envs=5, threads=1)
        >>> envs.unwrapped.set_task(envs.unwrapped.sample_tasks(5)[3], indices=[0])
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape, envs.unwrapped.get_task(0)["target"]
        ((5, 26), 3)
    """

    __doc__ = (__doc__ or "") + _COMMON_DOC
    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 20}

    def __init__(
        self,
        num_envs: int = 1,
        reward_type: str = "dense",
        goal_radius: float = 0.2,
        min_block_gap: float = 0.1,
        max_episode_steps: int | None = 100,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str | None = None,
        camera_id: int | None = None,
        render_index: int = 0,
        threads: int | None = None,
        use_mujoco_batch: bool | None = None,
    ) -> None:
        single = BlockPushEnv(
            reward_type, goal_radius, min_block_gap, render_mode, width, height, camera_name, camera_id
        )
        super().__init__(single, num_envs, max_episode_steps, render_index, threads, use_mujoco_batch)
        self.goal_radius, self.min_block_gap = single.goal_radius, single.min_block_gap
        n = self.num_envs
        self._layouts = np.zeros((n, N_BLOCKS, 2))
        self._targets = np.zeros(n, dtype=np.int64)
        self._goals = np.zeros((n, 2))
        self._sparse_const = np.zeros(n)
        self._write_task(single.get_task(), np.arange(n))

    # -- task API: the single env checks a task and gives its canonical form -----------------------
    def _check_task(self, task: Any) -> dict[str, Any]:
        self._single.set_task(task)
        return self._single.get_task()

    def _write_task(self, task: dict[str, Any], indices: np.ndarray) -> None:
        goal = task["goal"]
        self._layouts[indices] = task["layout"]
        self._targets[indices] = task["target"]
        self._goals[indices] = goal
        self._sparse_const[indices] = block_push_far_reward(float(goal[0]), float(goal[1]))

    def _read_task(self, index: int) -> dict[str, Any]:
        return {
            "layout": self._layouts[index].copy(),
            "target": int(self._targets[index]),
            "goal": self._goals[index].copy(),
        }

    # -- dynamics -------------------------------------------------------------------------------
    def _target_distances(self, indices: np.ndarray | slice = slice(None)) -> np.ndarray:
        qpos, goals = self.physics.qpos[indices], self._goals[indices]
        rows = np.arange(len(qpos))
        column = 3 + 2 * self._targets[indices]
        return self._hypot(qpos[rows, column] - goals[:, 0], qpos[rows, column + 1] - goals[:, 1])

    def _reset_envs(self, indices: np.ndarray) -> None:
        qpos = np.tile(self._init_qpos, (len(indices), 1))
        qpos[:, :3] = 0.0
        qpos[:, 3:] = self._layouts[indices].reshape(len(indices), -1)
        self.physics.reset(indices, qpos, np.zeros((len(indices), self._init_qvel.size)))
        self._distance[indices] = distance = self._target_distances(indices)
        self._reached[indices] = distance <= self.goal_radius

    def _observe(self) -> np.ndarray:
        obs = np.empty((self.num_envs, 26), dtype=np.float32)
        obs[:, :13] = self.physics.qpos
        obs[:, 13:] = self.physics.qvel
        return obs

    def _step_envs(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        ctrl, _ = self._controls(actions)
        self.physics.step(ctrl)
        distance = self._target_distances()
        dense, sparse, inside = block_push_reward(distance, self._sparse_const, self.goal_radius)
        self._reached |= inside
        infos = {"distance": distance, "is_success": self._reached.copy(), "sparse_reward": sparse}
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        return self._observe(), sparse if self.sparse else dense, terminated, infos
